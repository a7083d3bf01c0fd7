//! The fixture workspace the cross-file tests index: Python, Rust, TypeScript, Go, C++ and
//! Java sources, a `.gitignore`d folder, `node_modules`, a build folder, a hidden folder, and
//! binary, minified and non-UTF-8 files that must be skipped.

use std::path::Path;

use super::*;

pub(super) const TAX_PY: &str = r#"RATE = 0.2
"""Taxes."""


def compute_tax(amount: float, rate: float = RATE) -> float:
    """The tax on `amount`."""
    return round(amount * rate, 2)


class Invoice:
    """An invoice."""

    currency = "EUR"

    def __init__(self, lines):
        self.lines = lines

    @property
    def total(self) -> float:
        subtotal = sum(line.amount for line in self.lines)
        return subtotal + compute_tax(subtotal)
"#;

pub(super) const REPORT_PY: &str = r#"from billing.tax import compute_tax, Invoice


def report(invoice: Invoice) -> str:
    amount = invoice.total
    tax = compute_tax(
"#;

pub(super) const GEOMETRY_RS: &str = r#"//! Geometry.

/// Most points a shape may have.
pub const MAX_POINTS: usize = 1024;

/// A point in the plane.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    pub fn new(x: f64, y: f64) -> Point {
        Point { x, y }
    }

    /// Euclidean distance.
    pub fn distance(&self, other: &Point) -> f64 {
        ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()
    }
}

pub trait Shape {
    fn area(&self) -> f64;
    fn name(&self) -> &str {
        "shape"
    }
}

pub fn origin() -> Point {
    Point::new(0.0, 0.0)
}

macro_rules! point {
    ($x:expr, $y:expr) => {
        Point::new($x, $y)
    };
}
"#;

pub(super) const MAIN_RS: &str = r#"mod geometry;

use crate::geometry::{origin, Point};

fn main() {
    let here = Point::new(3.0, 4.0);
    let d = here.distance(
"#;

pub(super) const FORMAT_TS: &str = r#"export interface Money {
  amount: number;
  currency: string;
}

export const DEFAULT_CURRENCY = "EUR";

export type Cents = number;

export enum Rounding {
  Up,
  Down,
}

/** Formats an amount of money. */
export function formatMoney(money: Money, digits = 2): string {
  return `${money.amount.toFixed(digits)} ${money.currency}`;
}

export class Formatter {
  private readonly locale: string;

  constructor(locale: string) {
    this.locale = locale;
  }

  format(money: Money): string {
    return formatMoney(money);
  }
}

export const toCents = (money: Money): Cents => Math.round(money.amount * 100);
"#;

pub(super) const APP_TS: &str = r#"import { formatMoney, Money } from "./format";

const price: Money = { amount: 12.5, currency: "EUR" };
console.log(formatMoney(
"#;

pub(super) const SHAPES_GO: &str = r#"package shapes

// MaxSide is the largest side a rectangle may have.
const MaxSide = 100

// Rect is a rectangle.
type Rect struct {
	W, H float64
}

// Shape has an area.
type Shape interface {
	Area() float64
}

// Area of the rectangle.
func (r Rect) Area() float64 {
	return r.W * r.H
}

// NewRect makes a rectangle.
func NewRect(w, h float64) Rect {
	return Rect{W: w, H: h}
}
"#;

pub(super) const MAIN_GO: &str = r#"package main

import (
	"fmt"

	"example.com/app/shapes"
)

func main() {
	r := shapes.NewRect(
"#;

pub(super) const VEC_HPP: &str = r#"#pragma once
#define VEC_DIM 3

namespace geo {
template <typename T>
struct Vec3 {
    T x, y, z;
    T dot(const Vec3& o) const { return x * o.x + y * o.y + z * o.z; }
};

double norm(const Vec3<double>& v);

typedef struct { int id; } handle_t;
}
"#;

pub(super) const MONEY_JAVA: &str = r#"package com.acme;

public class Money {
    private final long cents;

    public Money(long cents) {
        this.cents = cents;
    }

    public long cents() {
        return cents;
    }

    interface Rounder {
        long round(double value);
    }
}
"#;

/// Writes the fixture workspace into `root`.
pub(super) fn write_fixture(root: &Path) {
    let files: &[(&str, &[u8])] = &[
        (".gitignore", b"generated/\n*.log\n"),
        ("billing/tax.py", TAX_PY.as_bytes()),
        ("billing/report.py", REPORT_PY.as_bytes()),
        ("src/geometry.rs", GEOMETRY_RS.as_bytes()),
        ("src/main.rs", MAIN_RS.as_bytes()),
        ("web/format.ts", FORMAT_TS.as_bytes()),
        ("web/app.ts", APP_TS.as_bytes()),
        ("go/shapes/shapes.go", SHAPES_GO.as_bytes()),
        ("go/main.go", MAIN_GO.as_bytes()),
        ("cpp/vec.hpp", VEC_HPP.as_bytes()),
        ("java/Money.java", MONEY_JAVA.as_bytes()),
        ("README.md", b"# fixture\n"),
        ("generated/compute.py", b"def compute_tax(x):\n    return 0\n"),
        ("node_modules/left-pad/index.js", b"function leftPad(s) { return s; }\n"),
        ("build/out.py", b"def built():\n    pass\n"),
        (".hidden/secret.py", b"def secret():\n    pass\n"),
        ("web/blob.c", b"int x;\0\0\x01\x02binary\n"),
        ("web/bundle.js", &[]),
        ("web/latin1.py", b"name = '\xe9t\xe9'\n"),
    ];
    for (path, content) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap_or(root)).expect("fixture folder");
        let content: Vec<u8> = if *path == "web/bundle.js" {
            // Minified: one 20 KiB line.
            format!("function a(){{return 1}};{}\n", "var x=1;".repeat(2_500)).into_bytes()
        } else {
            content.to_vec()
        };
        std::fs::write(full, content).expect("fixture file");
    }
}

pub(super) fn indexed_fixture() -> (tempfile::TempDir, CrossFile, IndexReport) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_fixture(dir.path());
    let cross = CrossFile::new(CrossFileLimits::default());
    let job = cross.index_workspace(dir.path(), |_, _| {}).expect("indexer thread");
    let report = job.join();
    (dir, cross, report)
}

pub(super) fn path_in(dir: &tempfile::TempDir, relative: &str) -> String {
    dir.path().join(relative).to_string_lossy().into_owned()
}
