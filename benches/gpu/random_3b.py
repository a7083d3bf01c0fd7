"""Writes a model folder with Qwen2.5-Coder-3B's exact architecture and random bf16 weights.

Latency does not depend on the weights' values, so this stands in for the real 3B where it
cannot be downloaded. Cap the generated length when measuring (random weights produce random
text, which would otherwise change the amount of work).

    python benches/gpu/random_3b.py OUT_DIR --tokenizer-from FOLDER_WITH_tokenizer.json

The tokenizer is copied from a real Qwen2.5-Coder export (e.g. `python -m inkling_finetune
export` of the 1.5B, or any Qwen2.5 tokenizer.json): the vocabulary is shared by the family.
Needs torch and safetensors (the finetune venv has both). Writes ~6.2 GB.
"""
import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

# Qwen2.5-Coder-3B (config.json of the published model).
CONFIG = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 2048,
    "intermediate_size": 11008,
    "num_hidden_layers": 36,
    "num_attention_heads": 16,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "vocab_size": 151936,
    "torch_dtype": "bfloat16",
    "bos_token_id": 151643,
    "eos_token_id": 151643,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--tokenizer-from", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    c = CONFIG
    h, f, layers = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    hd = h // c["num_attention_heads"]
    kv = c["num_key_value_heads"] * hd
    g = torch.Generator().manual_seed(args.seed)

    def rand(*shape):
        return (torch.randn(*shape, generator=g) * 0.02).to(torch.bfloat16)

    tensors = {"model.embed_tokens.weight": rand(c["vocab_size"], h), "model.norm.weight": torch.ones(h, dtype=torch.bfloat16)}
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors.update({
            p + "input_layernorm.weight": torch.ones(h, dtype=torch.bfloat16),
            p + "post_attention_layernorm.weight": torch.ones(h, dtype=torch.bfloat16),
            p + "self_attn.q_proj.weight": rand(h, h), p + "self_attn.q_proj.bias": rand(h),
            p + "self_attn.k_proj.weight": rand(kv, h), p + "self_attn.k_proj.bias": rand(kv),
            p + "self_attn.v_proj.weight": rand(kv, h), p + "self_attn.v_proj.bias": rand(kv),
            p + "self_attn.o_proj.weight": rand(h, h),
            p + "mlp.gate_proj.weight": rand(f, h), p + "mlp.up_proj.weight": rand(f, h), p + "mlp.down_proj.weight": rand(h, f),
        })
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.out / "model.safetensors"), metadata={"format": "pt"})
    (args.out / "config.json").write_text(json.dumps(c, indent=2))
    shutil.copy(args.tokenizer_from / "tokenizer.json", args.out / "tokenizer.json")
    n = sum(t.numel() for t in tensors.values())
    print(f"wrote {args.out}: {n / 1e9:.2f}B parameters, bf16")


if __name__ == "__main__":
    main()
