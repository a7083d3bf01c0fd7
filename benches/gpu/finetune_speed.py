"""LoRA training speed of Qwen2.5-Coder architectures on a GPU, through `inkling_finetune train`.

Speed and memory do not depend on the weights' values, so each model is built from its published
architecture with random weights (the real weights are not needed). The data is a real dataset
written by `inkling dataset`; the tokenizer is the real Qwen2.5-Coder one (saved from the GGUF
with `inkling_finetune.model.load_tokenizer(...).save_pretrained(DIR)`).

    python3 benches/gpu/finetune_speed.py --tokenizer TOK_DIR --data DATASET_DIR --out OUT_DIR \
        [--models 0.5b,1.5b,3b] [--steps 60] [--batch 8] [--seq 512]

Prints a RESULT line per model, then a table: steps, training tokens (prompt + completion tokens
fed to the model), training seconds (the held-out evaluation included), tokens/s and peak GPU
memory. Losses are meaningless here (random weights) and are not reported.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "finetune"))

# Published Qwen2.5-Coder architectures (config.json of each model), tied embeddings.
ARCHS = {
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14),
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12),
    "3b": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16),
    # For checking the script on a CPU.
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4),
}


def build_model(name: str, tokenizer_dir: Path, out: Path) -> Path:
    """A random-weight model folder with the real tokenizer."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = out / f"qwen2.5-coder-{name}-random"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    cfg = Qwen2Config(vocab_size=151936, num_key_value_heads=2, max_position_embeddings=32768,
                      rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
                      bos_token_id=151643, eos_token_id=151643, **ARCHS[name])
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)
    for f in tokenizer_dir.iterdir():
        shutil.copy(f, folder / f.name)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return folder


def config_text(base: Path, data: Path, run: Path, steps: int, batch: int, seq: int) -> str:
    return f"""
[model]
base = "{base}"
dtype = "auto"

[data]
dir = "{data}"
max_seq_len = {seq}
max_heldout_examples = 64

[train]
output_dir = "{run}"
max_steps = {steps}
batch_size = {batch}
grad_accum = 1
eval_every = {steps}
save_every = {steps}
log_every = 10
early_stopping_patience = 0
"""


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--tokenizer", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--models", default="0.5b,1.5b,3b")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=512)
    args = p.parse_args()
    args.tokenizer, args.data, args.out = args.tokenizer.resolve(), args.data.resolve(), args.out.resolve()

    import torch
    from inkling_finetune import config as C
    from inkling_finetune.train import train

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)"
    print(f"GPU: {device}, torch {torch.__version__}", flush=True)
    rows = []
    for name in args.models.split(","):
        started = time.time()
        base = build_model(name, args.tokenizer, args.out)
        run = args.out / f"run-{name}"
        toml = args.out / f"finetune-{name}.toml"
        toml.write_text(config_text(base, args.data, run, args.steps, args.batch, args.seq))
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        t0 = time.time()
        train(C.load(toml))
        wall = time.time() - t0
        metrics = json.loads((run / "metrics.json").read_text())
        row = {"model": name, "build_s": round(t0 - started, 1), "train_wall_s": round(wall, 1),
               "steps": metrics.get("step"), "tokens": metrics.get("tokens"),
               "tokens_per_s": metrics.get("tokens_per_s"), "elapsed_s": metrics.get("elapsed_s"),
               "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else 0.0}
        rows.append(row)
        (args.out / f"metrics-{name}.json").write_text(json.dumps(metrics, indent=1))
        print("RESULT", json.dumps(row), flush=True)
        shutil.rmtree(base)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    print(f"\nbatch {args.batch} x seq <= {args.seq}, {args.steps} steps, LoRA r=16 on all 7 projections, bf16")
    print("model  steps  tokens   train s  tokens/s  peak GPU GiB")
    for r in rows:
        print(f"{r['model']:<6} {r['steps']:>5} {r['tokens']:>7} {r['elapsed_s']:>9} {r['tokens_per_s']:>9} {r['peak_gpu_gib']:>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
