"""inkling_finetune: LoRA fine-tuning of Qwen2.5-Coder on one repository, and export for inkling."""

import os

# Everything is read from local files; never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__version__ = "0.1.0"
