//! `eval.png`: one panel per metric, bars per kind (one per configuration, side by side) with their
//! 95% bootstrap intervals as error bars. Drawn by hand with an embedded 8×8 bitmap font, so it
//! needs no system fonts.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context as _, Result};
use font8x8::UnicodeFonts;

use super::metrics::METRICS;
use super::report::Report;

const WIDTH: usize = 1000;
const PANEL: usize = 250;
const TOP: usize = 50;
const LEFT: usize = 70;
const RIGHT: usize = 20;
const PLOT_TOP: usize = 30;
const PLOT_HEIGHT: usize = 180;

type Rgb = [u8; 3];
const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [220, 220, 220];
const COLORS: [Rgb; 4] = [[66, 133, 244], [234, 134, 52], [52, 168, 83], [150, 90, 190]];

struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Canvas {
        Canvas { width, height, pixels: WHITE.repeat(width * height) }
    }

    fn put(&mut self, x: usize, y: usize, c: Rgb) {
        if x < self.width && y < self.height {
            let i = (y * self.width + x) * 3;
            self.pixels[i..i + 3].copy_from_slice(&c);
        }
    }

    fn rect(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, c: Rgb) {
        for y in y0.min(y1)..=y0.max(y1) {
            for x in x0.min(x1)..=x0.max(x1) {
                self.put(x, y, c);
            }
        }
    }

    /// Text in the 8×8 font, `scale` pixels per font pixel; unknown characters become `?`.
    fn text(&mut self, x: usize, y: usize, s: &str, scale: usize, c: Rgb) {
        for (k, ch) in s.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS.get(ch).or_else(|| font8x8::BASIC_FONTS.get('?')).unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        let (px, py) = (x + (k * 8 + col) * scale, y + row * scale);
                        self.rect(px, py, px + scale - 1, py + scale - 1, c);
                    }
                }
            }
        }
    }

    fn save(&self, path: &Path) -> Result<()> {
        let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut encoder = png::Encoder::new(BufWriter::new(file), self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().context("cannot write the PNG header")?;
        writer.write_image_data(&self.pixels).context("cannot write the PNG image")?;
        writer.finish().context("cannot finish the PNG file")?;
        Ok(())
    }
}

/// Draws the chart of `report` into `path`.
pub fn write_png(report: &Report, path: &Path) -> Result<()> {
    let height = TOP + PANEL * METRICS.len();
    let mut canvas = Canvas::new(WIDTH, height);
    canvas.text(LEFT, 12, &format!("inkling eval: {} samples, seed {}", report.samples.len(), report.seed), 2, BLACK);
    // Legend, right-aligned.
    let mut x = WIDTH - RIGHT;
    for (i, config) in report.configs.iter().enumerate().rev() {
        let label: String = config.name.chars().take(30).collect();
        x -= label.chars().count() * 8 + 24;
        canvas.rect(x, 34, x + 10, 44, COLORS[i % COLORS.len()]);
        canvas.text(x + 16, 36, &label, 1, BLACK);
    }
    let kinds: Vec<String> = report
        .configs
        .first()
        .and_then(|c| report.summary.get(&c.name))
        .map(|rows| rows.iter().map(|r| r.kind.clone()).collect())
        .unwrap_or_default();
    let plot_width = WIDTH - LEFT - RIGHT;
    let group = plot_width / kinds.len().max(1);
    let bars = report.configs.len().max(1);
    let bar = (group * 2 / 3 / bars).max(2);
    for (p, metric) in METRICS.iter().enumerate() {
        let top = TOP + p * PANEL + PLOT_TOP;
        let bottom = top + PLOT_HEIGHT;
        let y_of = |v: f64| bottom - (v.clamp(0.0, 1.0) * PLOT_HEIGHT as f64).round() as usize;
        canvas.text(10, top - 22, metric, 2, BLACK);
        for tick in 0..=4 {
            let v = tick as f64 / 4.0;
            canvas.rect(LEFT, y_of(v), WIDTH - RIGHT, y_of(v), GRID);
            canvas.text(LEFT - 40, y_of(v) - 4, &format!("{v:.2}"), 1, BLACK);
        }
        canvas.rect(LEFT, top, LEFT, bottom, BLACK);
        canvas.rect(LEFT, bottom, WIDTH - RIGHT, bottom, BLACK);
        for (g, kind) in kinds.iter().enumerate() {
            let x0 = LEFT + g * group + (group - bar * bars) / 2;
            for (c, config) in report.configs.iter().enumerate() {
                let Some(i) = report
                    .summary
                    .get(&config.name)
                    .and_then(|rows| rows.iter().find(|r| &r.kind == kind))
                    .and_then(|r| r.metrics.get(*metric))
                else {
                    continue;
                };
                if i.n == 0 || i.mean.is_nan() {
                    continue;
                }
                let bx = x0 + c * bar;
                canvas.rect(bx + 1, y_of(i.mean), bx + bar - 2, bottom, COLORS[c % COLORS.len()]);
                let mid = bx + bar / 2;
                canvas.rect(mid, y_of(i.hi), mid, y_of(i.lo), BLACK);
                canvas.rect(mid.saturating_sub(4), y_of(i.hi), mid + 4, y_of(i.hi), BLACK);
                canvas.rect(mid.saturating_sub(4), y_of(i.lo), mid + 4, y_of(i.lo), BLACK);
            }
            let label: String = kind.chars().take(group / 8).collect();
            let lx = LEFT + g * group + group.saturating_sub(label.chars().count() * 8) / 2;
            canvas.text(lx, bottom + 6, &label, 1, BLACK);
        }
    }
    canvas.save(path)
}
