"""Recipe section of an `sft` stage: supervised fine-tuning through TRL's SFTTrainer.

    - name: sft_a
      kind: sft
      data: {toy: addition}            # or {path: data.jsonl} / {hf: org/name, split: train}
      peft: {r: 16, alpha: 32}         # optional LoRA, merged after the stage
      train: {max_steps: 300, learning_rate: 1.0e-3}

Data rows are prompt/completion (loss on the completion only), chat `messages`, or `text`.
"""

from __future__ import annotations

from typing import Literal

from cpt.recipe.base import DataSource
from cpt.stages.spec import StageSpec


def _sft_config_class():
    from trl import SFTConfig

    return SFTConfig


class SFTStageSpec(StageSpec):
    kind: Literal["sft"]
    data: DataSource

    trainer_config_class = staticmethod(_sft_config_class)
