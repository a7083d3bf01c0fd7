#!/usr/bin/env bash
# End-to-end check of the fine-tuning loop with the real binary and a tiny random model:
#   inkling dataset -> train (a few LoRA steps) -> export -> inkling complete --model <export>.
# Usage: INKLING_BIN=target/release/inkling bash finetune/tests/e2e_tiny.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${INKLING_BIN:?set INKLING_BIN to the inkling binary}"
INKLING_BIN="$(cd "$(dirname "$INKLING_BIN")" && pwd)/$(basename "$INKLING_BIN")"
export INKLING_BIN
bash "$here/../install.sh"
exec "$here/../.venv/bin/python" -m pytest "$here/test_e2e.py" -q -m e2e
