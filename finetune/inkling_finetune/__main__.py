"""Command line: ``python -m inkling_finetune {init-config,train,export,filter} ...``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import config as C


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m inkling_finetune",
                                description="LoRA fine-tuning of Qwen2.5-Coder for inkling.")
    sub = p.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init-config", help="write an example finetune.toml")
    init.add_argument("path", nargs="?", default="finetune.toml")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")

    tr = sub.add_parser("train", help="train a LoRA adapter")
    tr.add_argument("--config", required=True, help="finetune.toml")
    tr.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    tr.add_argument("--max-steps", type=int, help="override train.max_steps")

    ex = sub.add_parser("export", help="merge the adapter and write a folder the server loads")
    ex.add_argument("--config", help="finetune.toml (adapter = <output_dir>/adapter, out = export.dir)")
    ex.add_argument("--adapter", help="adapter folder (overrides the config)")
    ex.add_argument("--base", help="base model (default: the one the adapter was trained on)")
    ex.add_argument("--out", help="output folder (overrides the config)")
    ex.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="weight dtype (default bfloat16)")
    ex.add_argument("--gguf", action="store_true", help="also write model.gguf")
    ex.add_argument("--gguf-type", choices=["f16", "f32", "q8_0"], help="GGUF tensor type (default f16)")

    fi = sub.add_parser("filter", help="fit the quality filter on `inkling eval` results and measure it")
    fi.add_argument("--train", action="append", required=True,
                    help="results.json to fit on (e.g. `inkling eval --files train`); repeatable")
    fi.add_argument("--test", action="append", required=True,
                    help="results.json of other files to measure on (e.g. `inkling eval` held-out runs); repeatable")
    fi.add_argument("--router-test", action="append",
                    help="results.json of a bigger model on the same held-out cursors, to measure the router; repeatable")
    fi.add_argument("--config", default="default", help="the configuration in the results to use (default: default)")
    fi.add_argument("--out", required=True, help="folder for filter.json, coverage.json and coverage.png")
    fi.add_argument("--seed", type=int, default=1)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "init-config":
            path = Path(args.path)
            if path.exists() and not args.force:
                print(f"error: {path} exists (use --force to overwrite)", file=sys.stderr)
                return 2
            path.write_text(C.EXAMPLE)
            print(f"wrote {path}")
            return 0
        if args.command == "train":
            from .train import train

            cfg = C.load(args.config)
            train(cfg, resume=args.resume, max_steps=args.max_steps)
            return 0
        if args.command == "filter":
            return _filter(args)
        return _export(args)
    except (C.ConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _export(args: argparse.Namespace) -> int:
    from .export import export

    cfg = C.load(args.config) if args.config else None
    adapter = args.adapter or (str(cfg.adapter_dir) if cfg else None)
    out = args.out or (str(cfg.export_dir) if cfg else None)
    if not adapter or not out:
        print("error: give --config, or both --adapter and --out", file=sys.stderr)
        return 2
    dtype = args.dtype or (cfg.export.dtype if cfg else "bfloat16")
    gguf = args.gguf or (cfg.export.gguf if cfg else False)
    gguf_type = args.gguf_type or (cfg.export.gguf_type if cfg else "f16")
    base = args.base or (cfg.model.base if cfg and not args.adapter else None)
    folder = export(adapter, out, base=base, dtype=dtype, gguf=gguf, gguf_type=gguf_type)
    print(folder)
    return 0



def _filter(args: argparse.Namespace) -> int:
    from . import filter as F

    out = Path(args.out)
    result = F.run(args.train, args.test, out, config=args.config, router_test=args.router_test, seed=args.seed)
    print(f"{result['train_suggestions']} training suggestions, {result['test_suggestions']} test suggestions")
    print(F.format_table(result["coverage"]))
    at = result["at_min_confidence"]
    print(f"minConfidence {result['min_confidence']:.3f} (shows {F.TARGET_COVERAGE:.0%} of the training suggestions out of fold): "
          f"on the test suggestions coverage {at['coverage']:.0%}, precision EM {at['precision_em']:.3f}, ES>=0.7 {at['precision_es']:.3f}")
    for r in result.get("router", []):
        print(f"{r['what']:>16}: EM {r['em']:.3f}  mean {r['ms']:.0f} ms  routed {r['routed']:.0%}  "
              f"share of the big model's gain {r['share_of_gain']:.0%}  latency vs big {r['ms_vs_big']:.0%}")
    print(f"wrote {out / 'filter.json'}, {out / 'coverage.json'} and {out / 'coverage.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
