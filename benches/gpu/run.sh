#!/usr/bin/env bash
# Runs the GPU measurements on the GPU machine (no Rust toolchain there): the CUDA server built
# by .ci/build-cuda.sh and the replay benchmark binary built with `cargo bench --bench replay
# --features cuda --no-run` are carried over in a folder given as $1.
#
#   bash benches/gpu/run.sh CARRIED_DIR MODEL.gguf|MODEL_DIR
#
# CARRIED_DIR holds: inkling-cuda, replay (the bench binary), and optionally llama-server
# (INKLING_LLAMA_SERVER). The replay types into the files it finds there (Python's standard
# library is enough; the Rust and TypeScript files are skipped with a message when absent).
set -euo pipefail
carried="$1"; model="$2"
SP=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
LIBS=""; for d in "$SP"/nvidia/cu13/lib "$SP"/nvidia/*/lib /usr/local/cuda/lib64; do [ -d "$d" ] && LIBS="$LIBS:$d"; done
export LD_LIBRARY_PATH="${LIBS#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"   # cu13 first
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
export INKLING_BIN="$carried/inkling-cuda" INKLING_BENCH_MODEL="$model"
# Correctness first: the GPU must give the CPU's answer on the obvious case.
printf 'def add(a, b):\n    return \n' > /tmp/add.py
"$INKLING_BIN" complete --model "$model" /tmp/add.py:2:12
# Keystroke replay through the LSP with the user model (a key every 150 ms, late answers cancelled).
peers="inkling"; [ -x "$carried/llama-server" ] && peers="inkling,llama"
INKLING_LLAMA_SERVER="$carried/llama-server" INKLING_REPLAY_PEERS="$peers" INKLING_REPLAY_LINES="${INKLING_REPLAY_LINES:-7}" "$carried/replay" --bench
