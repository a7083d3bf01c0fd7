#!/usr/bin/env bash
# Install the fine-tuning tools into finetune/.venv (idempotent; a no-op when up to date).
#
# Everything comes from PyPI. The Linux torch wheel on PyPI is a CUDA build whose shared
# libraries link the nvidia-* CUDA libraries, so those must be present even to `import torch`
# on a CPU-only machine. To stay lean and deterministic, requirements.lock lists every package
# exactly and is installed with --no-deps: that leaves out triton (GPU kernel compiler, not
# used on CPU), nvidia-nvtx-cu12 and hf-xet (hub downloads). About 3 GB to download and
# 6.5 GB on disk, nearly all of it torch (1.7 GB) and the CUDA libraries (4.3 GB).
#
# Env: PYTHON (default python3, must be >= 3.10), INKLING_FINETUNE_VENV (default finetune/.venv).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${INKLING_FINETUNE_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
lock="$here/requirements.lock"
stamp="$venv/.inkling-lock.sha256"
want="$(cat "$lock" "$here/pyproject.toml" | sha256sum | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "finetune: $venv is up to date"
    exit 0
fi
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 is needed"'
    "$python" -m venv "$venv"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$venv/bin/python" -m pip install --quiet --no-deps -r "$lock"
# The package itself, editable, so `python -m inkling_finetune` works from any folder.
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$here" 2>/dev/null \
    || "$venv/bin/python" -m pip install --quiet --no-deps -e "$here"
"$venv/bin/python" -c 'import torch, transformers, peft, accelerate, gguf, matplotlib, sklearn, inkling_finetune'
echo "$want" > "$stamp"
echo "finetune: installed into $venv (torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)'))"
