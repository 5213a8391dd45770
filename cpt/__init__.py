"""cpt: continual post-training of LLMs from one YAML recipe (`cpt run recipes/quickstart.yaml`)."""

import os
from pathlib import Path

# DeepSpeed, when installed, is imported by every `save_pretrained` (accelerate's unwrap) and, on a machine
# without a GPU, prints "Setting accelerator to CPU ..." to stdout. Where no NVIDIA or AMD GPU device
# exists, name the CPU accelerator ourselves so it stays quiet; a GPU machine keeps DeepSpeed's detection.
if "DS_ACCELERATOR" not in os.environ and not any(Path("/dev").glob("nvidia*")) and not Path("/dev/kfd").exists():
    os.environ["DS_ACCELERATOR"] = "cpu"

# transformers 5.2x loads every model with `use_kernels=True` when the `kernels` package is installed (transformers
# itself requires it), and on a GPU the Trainer's `model.train()` then fetches compiled layers from the Hub
# ("kernels-community/rotary"): code a recipe never asked for, and on an offline cluster a crash ("not available
# in the local cache and Hugging Face Hub is in offline mode", seen on an H200). Off unless the user sets
# USE_HUB_KERNELS themselves, as `trust_remote_code` is off unless a recipe says so.
os.environ.setdefault("USE_HUB_KERNELS", "NO")
