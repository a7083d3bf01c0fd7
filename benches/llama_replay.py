"""Replays inkling's keystroke prompts through llama.cpp (llama-cpp-python), for comparison.

Input (JSONL, one line per keystroke, in order): {"tokens": [int], "max_new_tokens": int}.
The tokens are exactly the prompt inkling's engine built for that keystroke (same GGUF, same
append-only FIM layout). llama-cpp-python's `Llama.generate` keeps the longest common token
prefix with the previous call, like llama-server's `cache_prompt`.

A line {"bench": [int], "decode_tokens": int} instead measures raw speed: a cold prefill of
those tokens, then that many single-token greedy decode steps; it answers
{"prefill_tok_s": float, "decode_tok_s": float}.

Output (JSONL, one line per input): {"ms": float, "text": str, "new_tokens": int,
"prefill_ms": float, "decode_ms": float}. Greedy; stops at a line break, an end/FIM token or
max_new_tokens.

Usage: python llama_replay.py MODEL.gguf PROMPTS.jsonl OUT.jsonl THREADS
"""
import json
import sys
import time

from llama_cpp import Llama


def raw_speed(llm: "Llama", tokens: list, decode_tokens: int) -> dict:
    llm.reset()
    started = time.perf_counter()
    llm.eval(tokens)
    prefill = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(decode_tokens):
        llm.eval([llm.sample(top_k=1, top_p=1.0, temp=0.0)])
    decode = time.perf_counter() - started
    llm.reset()
    return {"prefill_tok_s": len(tokens) / prefill, "decode_tok_s": decode_tokens / decode}


def main() -> int:
    model, prompts, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    llm = Llama(model_path=model, n_ctx=4096, n_threads=threads, n_threads_batch=threads, n_batch=512, verbose=False)
    stop_ids = {llm.token_eos()}
    for name in ("<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<|im_end|>"):
        ids = llm.tokenize(name.encode(), add_bos=False, special=True)
        if len(ids) == 1:
            stop_ids.add(ids[0])
    with open(prompts) as f, open(out, "w") as w:
        for line in f:
            req = json.loads(line)
            if "bench" in req:
                try:
                    w.write(json.dumps(raw_speed(llm, req["bench"], req["decode_tokens"])) + "\n")
                except Exception as e:  # keep the replay results even if this part fails
                    print(f"raw speed measurement failed: {e}", file=sys.stderr)
                continue
            started = time.perf_counter()
            first = None
            pieces = []
            n = 0
            for tok in llm.generate(req["tokens"], top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
                if first is None:
                    first = time.perf_counter()
                if tok in stop_ids:
                    break
                n += 1
                pieces.append(llm.detokenize([tok]))
                text = b"".join(pieces).decode("utf-8", errors="replace")
                if "\n" in text or n >= req["max_new_tokens"]:
                    break
            done = time.perf_counter()
            text = b"".join(pieces).decode("utf-8", errors="replace")
            first = first or done
            w.write(json.dumps({
                "ms": (done - started) * 1e3,
                "prefill_ms": (first - started) * 1e3,
                "decode_ms": (done - first) * 1e3,
                "new_tokens": n,
                "text": text,
            }) + "\n")
            w.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
