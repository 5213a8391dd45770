"""Recipe section of a `dpo` stage: preference optimisation through TRL's DPOTrainer.

    - name: dpo_a
      kind: dpo
      data: {toy: date_format}          # rows {prompt, chosen, rejected} (the toy tasks carry pairs)
      reference: null                   # default: the stage's starting model (lineage); or a model folder
      peft: {r: 16, alpha: 32}          # optional LoRA; the reference is then the adapter-free model
      train: {max_steps: 100, beta: 0.1, loss_type: [sigmoid]}   # DPOConfig fields, loss types included
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cpt.core.recipe_base import DataSource
from cpt.data.shapes import PREFERENCE_SHAPES
from cpt.stages.spec import StageSpec
from cpt.stages.trainer_fields import trainer_defaults


def _dpo_config_class():
    from trl import DPOConfig

    return DPOConfig


class DPOStageSpec(StageSpec):
    kind: Literal["dpo"]
    data: DataSource
    reference: str | None = Field(None, description="a model folder; default: the stage's starting model")

    trainer_config_class = staticmethod(_dpo_config_class)
    data_shapes = PREFERENCE_SHAPES

    def reference_model(self) -> str | None:
        return self.reference

    def plan_note(self) -> str:
        beta = self.train.get("beta")  # else TRL's own (DPOConfig's), read from the fields cache: no TRL import
        return f"  (DPO beta {trainer_defaults(self.trainer_config_class)['beta'] if beta is None else beta})"
