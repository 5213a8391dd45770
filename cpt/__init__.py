"""cpt: continual post-training of LLMs from one YAML recipe (`cpt run recipes/quickstart.yaml`)."""

import os
from pathlib import Path

# DeepSpeed, when installed, is imported by every `save_pretrained` (accelerate's unwrap) and, on a machine
# without a GPU, prints "Setting accelerator to CPU ..." to stdout. Where no NVIDIA or AMD GPU device
# exists, name the CPU accelerator ourselves so it stays quiet; a GPU machine keeps DeepSpeed's detection.
if "DS_ACCELERATOR" not in os.environ and not any(Path("/dev").glob("nvidia*")) and not Path("/dev/kfd").exists():
    os.environ["DS_ACCELERATOR"] = "cpu"
