"""LoRA training, resume, early stopping and export on the tiny model."""

import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import make_config
from inkling_finetune import data as D
from inkling_finetune import export as E
from inkling_finetune import train as T


def test_loss_goes_down_and_artifacts_are_written(tmp_path: Path, tiny_model: Path, dataset: Path) -> None:
    cfg = make_config(tmp_path, tiny_model, dataset, max_steps=24, eval_every=6, save_every=12,
                      learning_rate=1e-2)
    result = T.train(cfg)
    losses = [h["loss"] for h in result["history"]]
    assert len(losses) == 24
    assert sum(losses[-4:]) / 4 < 0.5 * sum(losses[:4]) / 4, losses
    evals = [h["eval_loss"] for h in result["history"] if "eval_loss" in h]
    assert len(evals) == 4
    out = cfg.output_dir
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "loss.png").stat().st_size > 1000
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == 24 and abs(metrics["best_eval_loss"] - min(evals)) < 1e-4
    assert [p.name for p in T.checkpoints(out)] == ["step-000012", "step-000024"]


def _batch(cfg, tokenizer_dir: Path) -> dict[str, torch.Tensor]:
    """A padded batch of two training examples of different lengths."""
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    examples = D.read_jsonl(cfg.train_path)[:2]
    encoded = [D.encode(e, tok, cfg.data.max_seq_len, tok.eos_token_id) for e in examples]
    assert len(encoded[0].input_ids) != len(encoded[1].input_ids)
    return D.Collator(tok.pad_token_id)(encoded)


def test_completion_loss_equals_the_full_output_layers_loss_and_gradients(tmp_path: Path, tiny_model: Path,
                                                                          dataset: Path) -> None:
    cfg = make_config(tmp_path, tiny_model, dataset)
    batch = _batch(cfg, tiny_model)
    model = T.build_model(cfg, torch.float32)
    model.train()
    # Train the LoRA B matrices a little so that the adapter is not zero and gradients flow.
    torch.manual_seed(0)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.05)
    full = model(**batch).loss
    full.backward()
    full_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    loss_sum, count = T.completion_loss(model, batch)
    assert count.item() == (batch["labels"][:, 1:] != D.IGNORE_INDEX).sum().item()
    mean = loss_sum / count
    mean.backward()
    assert abs(mean.item() - full.item()) < 1e-5, (mean.item(), full.item())
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert torch.allclose(p.grad, full_grads[n], atol=1e-6, rtol=1e-4), n


def test_top_layers_adapts_only_the_top_layers_with_no_backward_below(tmp_path: Path, tiny_model: Path,
                                                                     dataset: Path) -> None:
    cfg = make_config(tmp_path, tiny_model, dataset, lora={"top_layers": 1}, max_steps=12, learning_rate=1e-2)
    model = T.build_model(cfg, torch.float32)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".layers.1." in n for n in trainable), trainable
    seen = []
    layers = model.get_base_model().model.layers
    layers[0].register_forward_hook(lambda _m, _i, out: seen.append(
        (out[0] if isinstance(out, tuple) else out).requires_grad))
    loss_sum, count = T.completion_loss(model, _batch(cfg, tiny_model))
    (loss_sum / count).backward()
    assert seen == [False], "the frozen bottom layer must not be part of the backward graph"
    # Training the top layer alone still learns.
    result = T.train(cfg)
    losses = [h["loss"] for h in result["history"]]
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses


def test_top_layers_beyond_the_model_is_a_clear_error(tmp_path: Path, tiny_model: Path, dataset: Path) -> None:
    import pytest

    cfg = make_config(tmp_path, tiny_model, dataset, lora={"top_layers": 3})
    with pytest.raises(ValueError, match="top_layers = 3, but the model has 2 layers"):
        T.build_model(cfg, torch.float32)


def test_the_checkpoint_is_chosen_on_the_validation_split_when_there_is_one(tmp_path: Path, tiny_model: Path,
                                                                           dataset: Path, caplog) -> None:
    cfg = make_config(tmp_path, tiny_model, dataset)
    with caplog.at_level("WARNING"):
        assert T.choose_eval_file(cfg) == dataset / "heldout.jsonl"
    assert "the files `inkling eval` measures" in caplog.text
    caplog.clear()
    (dataset / "valid.jsonl").write_text((dataset / "train.jsonl").read_text().splitlines()[0] + "\n")
    with caplog.at_level("WARNING"):
        assert T.choose_eval_file(cfg) == dataset / "valid.jsonl"
    assert caplog.text == ""
    result = T.train(make_config(tmp_path, tiny_model, dataset, max_steps=2, eval_every=2))
    assert [h["eval_loss"] for h in result["history"] if "eval_loss" in h]


def test_resume_continues_at_the_right_step(tmp_path: Path, tiny_model: Path, dataset: Path) -> None:
    straight = T.train(make_config(tmp_path / "a", tiny_model, dataset, max_steps=6))
    cfg = make_config(tmp_path / "b", tiny_model, dataset, max_steps=6)
    first = T.train(cfg, stop_after=4)  # interrupted after step 4, checkpoint there
    assert first["step"] == 4
    resumed = T.train(make_config(tmp_path / "b", tiny_model, dataset, max_steps=6), resume=True)
    assert resumed["step"] == 6
    steps = [h["step"] for h in resumed["history"]]
    assert steps == [1, 2, 3, 4, 5, 6]
    a = [h["loss"] for h in straight["history"]]
    b = [h["loss"] for h in resumed["history"]]
    # Same data order, same optimizer and scheduler state: the same losses.
    assert all(abs(x - y) < 1e-4 for x, y in zip(a, b)), (a, b)


def test_early_stopping(tmp_path: Path, tiny_model: Path, dataset: Path) -> None:
    # A huge learning rate makes the held-out loss worse at every evaluation.
    cfg = make_config(tmp_path, tiny_model, dataset, max_steps=40, eval_every=1, save_every=1,
                      learning_rate=0.5, early_stopping_patience=2, early_stopping_min_delta=0.0)
    result = T.train(cfg)
    assert result["stopped_early"]
    assert result["step"] < 40
    assert result["step"] - result["best_step"] == 2
    # The kept adapter is the best one.
    info = json.loads((cfg.adapter_dir / "inkling_train.json").read_text())
    assert info["step"] == result["best_step"]


def test_export_reloads_with_identical_logits(tmp_path: Path, tiny_model: Path, dataset: Path) -> None:
    cfg = make_config(tmp_path, tiny_model, dataset, max_steps=4)
    T.train(cfg)
    merged, tokenizer = E.merge(cfg.adapter_dir)
    out = E.save_folder(merged, tokenizer, tmp_path / "export", dtype="float32")
    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    for key in E.REQUIRED_CONFIG_KEYS:
        assert key in config, key
    assert config["model_type"] == "qwen2" and config["tie_word_embeddings"] is True
    # The merge really changed the weights.
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok("<|fim_prefix|>def add(a, b):\n<|fim_suffix|>\n<|fim_middle|>", return_tensors="pt",
              add_special_tokens=False).input_ids
    assert ids[0, 0].item() == tok.convert_tokens_to_ids("<|fim_prefix|>")
    with torch.no_grad():
        a = merged(ids).logits
        b = reloaded(ids).logits
        c = base(ids).logits
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()
    assert not torch.allclose(a, c, atol=1e-4)
    # The FIM tokens are single tokens in the saved tokenizer.json (what the server reads).
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(out / "tokenizer.json"))
    enc = raw.encode("<|fim_prefix|>x<|fim_suffix|>y<|fim_middle|>", add_special_tokens=False)
    assert enc.tokens[0] == "<|fim_prefix|>" and enc.tokens[-1] == "<|fim_middle|>"


def test_export_bfloat16_is_half_size(tmp_path: Path, tiny_model: Path, dataset: Path) -> None:
    cfg = make_config(tmp_path, tiny_model, dataset, max_steps=2)
    T.train(cfg)
    f32 = E.export(cfg.adapter_dir, tmp_path / "f32", dtype="float32")
    bf16 = E.export(cfg.adapter_dir, tmp_path / "bf16", dtype="bfloat16")
    s32 = (f32 / "model.safetensors").stat().st_size
    s16 = (bf16 / "model.safetensors").stat().st_size
    assert s16 < 0.6 * s32
