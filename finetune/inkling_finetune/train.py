"""LoRA fine-tuning loop driven by ``accelerate``.

The same code runs on CPU, one GPU, or several GPUs under ``accelerate launch``. One *step*
is one optimizer update (``grad_accum`` micro-batches per process). Every ``eval_every``
steps the validation loss is computed; the best adapter so far is kept in
``<output_dir>/adapter`` and training stops early after ``early_stopping_patience``
evaluations without improvement. Every ``save_every`` steps a checkpoint (adapter,
optimizer, scheduler, step, RNG states, history) is written under
``<output_dir>/checkpoints/step-NNNNNN``; ``resume=True`` continues from the latest one,
at the same position in the same shuffled epoch.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import data as D
from .config import Config
from .model import load_model, load_tokenizer, resolve_dtype

log = logging.getLogger(__name__)

TRAIN_INFO = "inkling_train.json"


@dataclass
class State:
    """Everything about progress that a checkpoint must restore."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    tokens: int = 0
    best_eval: float = math.inf
    best_step: int = 0
    bad_evals: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoints(output_dir: Path) -> list[Path]:
    """Checkpoint folders, oldest first."""
    root = output_dir / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step-*") if (p / "state.pt").is_file())


def choose_eval_file(cfg: Config) -> Path:
    """The examples the checkpoint is chosen on: the validation split (training-side files) when
    the dataset has one, else the held-out split, with a warning: then the files that
    ``inkling eval`` measures also pick the checkpoint."""
    if cfg.valid_path.is_file() and cfg.valid_path.stat().st_size > 0:
        return cfg.valid_path
    if cfg.heldout_path.is_file():
        log.warning("%s not found: the checkpoint is chosen on %s, the files `inkling eval` measures; "
                    "rebuild the dataset with `inkling dataset` for a separate validation split",
                    cfg.valid_path, cfg.heldout_path)
    return cfg.heldout_path


def build_model(cfg: Config, dtype: torch.dtype) -> Any:
    """The base model with a fresh LoRA adapter on ``cfg.lora.target_modules``."""
    from peft import LoraConfig, get_peft_model

    model = load_model(cfg.model.base, dtype)
    model.config.use_cache = False
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    layers = None
    if cfg.lora.top_layers:
        total = int(model.config.num_hidden_layers)
        if cfg.lora.top_layers > total:
            raise ValueError(f"lora.top_layers = {cfg.lora.top_layers}, but the model has {total} layers")
        layers = list(range(total - cfg.lora.top_layers, total))
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=list(cfg.lora.target_modules), layers_to_transform=layers,
                      bias="none", task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, lora)
    except ValueError as e:
        raise ValueError(f"lora.target_modules: {e}") from e


def completion_loss(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy over the labelled tokens of ``batch``, and their count.

    The output layer (151,936 entries for Qwen) runs only at the positions that predict a
    labelled token, the completion, not at every prompt position: the same loss as computing
    all logits, for a fraction of the output layer's work and memory.
    """
    labels = batch["labels"]
    targets = labels[:, 1:]
    # Position t predicts token t + 1; keep every position some row of the batch needs.
    keep = (targets != D.IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   logits_to_keep=keep).logits
    wanted = targets[:, keep]
    loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), wanted.reshape(-1),
                                             ignore_index=D.IGNORE_INDEX, reduction="sum")
    return loss, (wanted != D.IGNORE_INDEX).sum()


@torch.no_grad()
def evaluate(model: Any, loader: Any, accelerator: Any) -> float:
    """Mean loss per completion token over the validation loader."""
    model.eval()
    total = torch.zeros(2, device=accelerator.device, dtype=torch.float64)
    for batch in loader:
        loss, count = completion_loss(model, batch)
        total += torch.stack([loss.double(), count.double()])
    total = accelerator.reduce(total, reduction="sum")
    model.train()
    return float(total[0] / total[1].clamp(min=1))


def _save_adapter(model: Any, accelerator: Any, where: Path, tokenizer: Any, cfg: Config, step: int) -> None:
    if not accelerator.is_main_process:
        return
    tmp = where.with_name(where.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    accelerator.unwrap_model(model).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / TRAIN_INFO).write_text(json.dumps({"base": cfg.model.base, "step": step,
                                              "config": cfg.to_dict()}, indent=2))
    shutil.rmtree(where, ignore_errors=True)
    tmp.rename(where)


def _save_checkpoint(model: Any, optimizer: Any, scheduler: Any, accelerator: Any, state: State,
                     cfg: Config, tokenizer: Any) -> None:
    where = cfg.output_dir / "checkpoints" / f"step-{state.step:06d}"
    _save_adapter(model, accelerator, where, tokenizer, cfg, state.step)
    if accelerator.is_main_process:
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "state": state.__dict__, "rng": _rng_state()}, where / "state.tmp")
        (where / "state.tmp").rename(where / "state.pt")
        for old in checkpoints(cfg.output_dir)[:-cfg.train.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def _load_checkpoint(where: Path, model: Any, optimizer: Any, scheduler: Any) -> State:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(str(where / "adapter_model.safetensors")))
    blob = torch.load(where / "state.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    _set_rng_state(blob["rng"])
    return State(**blob["state"])


def write_metrics(cfg: Config, state: State, extra: dict[str, Any]) -> None:
    """``metrics.json`` and ``loss.png`` in the output folder."""
    out = cfg.output_dir
    metrics = {"step": state.step, "tokens": state.tokens, "best_eval_loss": _finite(state.best_eval),
               "best_step": state.best_step, "stopped_early": state.stopped_early,
               "history": state.history, **extra}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_losses(state.history, out / "loss.png")


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def plot_losses(history: list[dict[str, Any]], path: Path) -> None:
    """Train and validation loss against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    train = [(h["step"], h["loss"]) for h in history if "loss" in h]
    heldout = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    if train:
        ax.plot(*zip(*train), label="train", linewidth=1)
    if heldout:
        ax.plot(*zip(*heldout), label="validation", marker="o", linewidth=1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss per completion token")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _schedule_total(cfg: Config, batches_per_epoch: int) -> int:
    if cfg.train.max_steps > 0:
        return cfg.train.max_steps
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / cfg.train.grad_accum))
    return max(1, math.ceil(steps_per_epoch * cfg.train.epochs))


def train(cfg: Config, resume: bool = False, max_steps: int | None = None,
          stop_after: int | None = None) -> dict[str, Any]:
    """Run (or resume) training; returns the final metrics.

    ``max_steps`` overrides ``train.max_steps`` (and so the schedule); ``stop_after`` ends the
    run after that step with a checkpoint but leaves the schedule alone, as an interruption would.
    """
    from accelerate import Accelerator
    from transformers import get_cosine_schedule_with_warmup

    if max_steps is not None:
        cfg.train.max_steps = max_steps
    accelerator = Accelerator(gradient_accumulation_steps=cfg.train.grad_accum)
    dtype = resolve_dtype(cfg.model.dtype)
    set_seed(cfg.train.seed)
    out = cfg.output_dir
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))

    tokenizer = load_tokenizer(cfg.model.base)
    eos = D.eos_id(tokenizer, cfg.data.eos_token)
    train_set = D.EncodedDataset(D.encode_all(D.read_jsonl(cfg.train_path), tokenizer,
                                              cfg.data.max_seq_len, eos, "train"))
    eval_file = choose_eval_file(cfg)
    heldout_examples = D.read_jsonl(eval_file) if eval_file.is_file() else []
    if cfg.data.max_heldout_examples:
        rng = random.Random(cfg.train.seed)
        rng.shuffle(heldout_examples)
        heldout_examples = heldout_examples[:cfg.data.max_heldout_examples]
    heldout_set = D.EncodedDataset(D.encode_all(heldout_examples, tokenizer, cfg.data.max_seq_len, eos, eval_file.stem))
    if len(train_set) == 0:
        raise D.DataError(f"{cfg.train_path}: no usable training examples")
    if len(heldout_set) == 0:
        log.warning("no validation examples: no evaluation and no early stopping")

    collate = D.Collator(D.pad_id(tokenizer, eos))
    generator = torch.Generator().manual_seed(cfg.train.seed)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.train.batch_size, shuffle=True,
                                               collate_fn=collate, generator=generator)
    eval_loader = torch.utils.data.DataLoader(heldout_set, batch_size=cfg.train.batch_size, collate_fn=collate)

    model = build_model(cfg, dtype)
    if accelerator.is_main_process:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        log.info("LoRA: %.2fM trainable of %.1fM parameters, dtype %s, device %s, %d process(es)",
                 trainable / 1e6, total / 1e6, dtype, accelerator.device, accelerator.num_processes)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.train.learning_rate, weight_decay=cfg.train.weight_decay)
    batches_per_epoch = math.ceil(len(train_set) / (cfg.train.batch_size * accelerator.num_processes))
    total_steps = _schedule_total(cfg, batches_per_epoch)
    warmup = int(round(cfg.train.warmup_ratio * total_steps))
    scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, total_steps)

    model, optimizer, train_loader, eval_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, eval_loader, scheduler)

    state = State()
    if resume:
        found = checkpoints(out)
        if found:
            state = _load_checkpoint(found[-1], accelerator.unwrap_model(model), optimizer, scheduler)
            log.info("resumed from %s at step %d (epoch %d, batch %d)", found[-1], state.step,
                     state.epoch, state.batch_in_epoch)
        else:
            log.info("--resume: no checkpoint in %s, starting from scratch", out / "checkpoints")
    if state.step >= total_steps or state.stopped_early:
        log.info("nothing to do: step %d of %d%s", state.step, total_steps,
                 " (stopped early)" if state.stopped_early else "")
        return json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").exists() else {}

    if accelerator.is_main_process:
        log.info("training: %d examples (%d tokens), %d for validation, %d steps of %d x %d x %d sequences, "
                 "warm-up %d", len(train_set), train_set.tokens(), len(heldout_set), total_steps,
                 cfg.train.batch_size, cfg.train.grad_accum, accelerator.num_processes, warmup)
    model.train()
    started = time.time()
    tokens_at_start = state.tokens
    steps_at_start = state.step
    window_loss = torch.zeros((), dtype=torch.float64)
    window_n = 0
    done = False
    while not done:
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(state.epoch)
        generator.manual_seed(cfg.train.seed + state.epoch)
        loader = accelerator.skip_first_batches(train_loader, state.batch_in_epoch) \
            if state.batch_in_epoch else train_loader
        for batch in loader:
            state.batch_in_epoch += 1
            with accelerator.accumulate(model):
                loss_sum, count = completion_loss(model, batch)
                loss = loss_sum / count.clamp(min=1)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.train.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(params, cfg.train.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            window_loss += loss.detach().double().cpu()
            window_n += 1
            state.tokens += int(batch["attention_mask"].sum()) * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            done = _after_step(cfg, state, model, optimizer, scheduler, accelerator, eval_loader, tokenizer,
                               window_loss / max(window_n, 1), total_steps, started, tokens_at_start,
                               steps_at_start, stop_after)
            window_loss.zero_()
            window_n = 0
            if done:
                break
        else:
            state.epoch += 1
            state.batch_in_epoch = 0

    # The exported adapter is the best by validation loss, else the last one.
    if not (cfg.adapter_dir / "adapter_model.safetensors").exists() or not math.isfinite(state.best_eval):
        _save_adapter(model, accelerator, cfg.adapter_dir, tokenizer, cfg, state.step)
    elapsed = time.time() - started
    extra = {"total_steps": total_steps, "elapsed_s": round(elapsed, 1),
             "tokens_per_s": round((state.tokens - tokens_at_start) / max(elapsed, 1e-9), 1),
             "adapter": str(cfg.adapter_dir)}
    if accelerator.is_main_process:
        write_metrics(cfg, state, extra)
        log.info("done at step %d; best validation loss %s at step %d; adapter in %s", state.step,
                 _finite(state.best_eval), state.best_step, cfg.adapter_dir)
    accelerator.wait_for_everyone()
    return {"step": state.step, "best_eval_loss": _finite(state.best_eval), "best_step": state.best_step,
            "stopped_early": state.stopped_early, "history": state.history, **extra}


def _after_step(cfg: Config, state: State, model: Any, optimizer: Any, scheduler: Any, accelerator: Any,
                eval_loader: Any, tokenizer: Any, loss: torch.Tensor, total_steps: int, started: float,
                tokens_at_start: int, steps_at_start: int, stop_after: int | None = None) -> bool:
    """Log, evaluate, checkpoint after optimizer step ``state.step``; True when training must stop."""
    loss_value = float(accelerator.reduce(loss.to(accelerator.device), reduction="mean"))
    entry: dict[str, Any] = {"step": state.step, "loss": round(loss_value, 5),
                             "lr": scheduler.get_last_lr()[0], "tokens": state.tokens}
    stop = state.step >= total_steps or (stop_after is not None and state.step >= stop_after)
    if len(eval_loader) and (state.step % cfg.train.eval_every == 0 or stop):
        eval_loss = evaluate(model, eval_loader, accelerator)
        entry["eval_loss"] = round(eval_loss, 5)
        if eval_loss < state.best_eval - cfg.train.early_stopping_min_delta:
            state.best_eval, state.best_step, state.bad_evals = eval_loss, state.step, 0
            _save_adapter(model, accelerator, cfg.adapter_dir, tokenizer, cfg, state.step)
        else:
            state.bad_evals += 1
            if cfg.train.early_stopping_patience and state.bad_evals >= cfg.train.early_stopping_patience:
                state.stopped_early = stop = True
                log.info("early stopping at step %d: no better validation loss for %d evaluations "
                         "(best %.4f at step %d)", state.step, state.bad_evals, state.best_eval, state.best_step)
    elapsed = time.time() - started
    entry["elapsed_s"] = round(elapsed, 2)
    state.history.append(entry)
    done_here = state.step - steps_at_start
    # The first step is always logged: its ETA is the run's time estimate, given at its start.
    first = done_here == 1
    if accelerator.is_main_process and (first or state.step % cfg.train.log_every == 0 or "eval_loss" in entry or stop):
        eta = elapsed / max(done_here, 1) * (total_steps - state.step)
        tps = (state.tokens - tokens_at_start) / max(elapsed, 1e-9)
        ev = f" eval_loss {entry['eval_loss']:.4f}" if "eval_loss" in entry else ""
        log.info("step %d/%d loss %.4f%s lr %.2e %.0f tok/s %.2f s/step ETA %s", state.step, total_steps,
                 loss_value, ev, entry["lr"], tps, elapsed / max(done_here, 1), _hms(eta))
    if state.step % cfg.train.save_every == 0 or stop:
        _save_checkpoint(model, optimizer, scheduler, accelerator, state, cfg, tokenizer)
    if accelerator.is_main_process and "eval_loss" in entry:
        write_metrics(cfg, state, {"total_steps": total_steps})
    return stop


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
