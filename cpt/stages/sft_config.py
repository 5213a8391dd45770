"""Recipe section of an `sft` stage: supervised fine-tuning through TRL's SFTTrainer.

    - name: sft_a
      kind: sft
      data: {toy: addition}            # or {path: data.jsonl} / {hf: org/name, split: train}
      peft: {r: 16, alpha: 32}         # optional LoRA, merged after the stage
      replay: {stages: [pretrain], ratio: 0.2}   # optional: 20% of the rows from earlier stages' data
                                                 # (weights: {pretrain: 2, ...} splits the 20% by weight)
      rehearsal: {prompts: {stages: [pretrain]}, ratio: 0.25}   # optional: 25% answered by the starting model
      train: {max_steps: 300, learning_rate: 1.0e-3}

Data rows are prompt/completion (loss on the completion only), chat `messages`, or `text`.
`replay` (also on cpt stages) names earlier stages whose training data is reused and/or a replay
file (`path`), and the share of replayed rows (`ratio`). `rehearsal` (also on cpt stages) adds rows the
starting model answers itself, for when the old data is gone (rehearsal_config.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cpt.core.recipe_base import DataSource
from cpt.data.earlier import EarlierDataSpec
from cpt.data.shapes import SFT_SHAPES
from cpt.stages.rehearsal_config import RehearsalSpec
from cpt.stages.spec import StageSpec


def _sft_config_class():
    from trl import SFTConfig

    return SFTConfig


class ReplaySpec(EarlierDataSpec):
    """Old data replayed in a stage at a fixed share, against forgetting.

    Without `weights` the named stages' rows (and the file's) are pooled, so each source's part of the share
    follows its row count. With `weights` ({stage name or "path": weight}; the sources not named weigh 1) each
    source gets weight / total of the share, whatever its size: e.g. more of it for the task learned last."""

    ratio: float = Field(gt=0.0, lt=1.0, description="share of replayed rows (sft) or sequences (cpt)")
    weights: dict[str, float] | None = Field(
        None, description="relative part of the share per source: earlier stage name or 'path' -> weight > 0")

    @model_validator(mode="after")
    def _weights_name_sources(self) -> ReplaySpec:
        if self.weights is None:
            return self
        named = self.source_names()
        for name, weight in self.weights.items():
            if name not in named:
                raise ValueError(f"weights: '{name}' is not one of this replay's sources ({', '.join(named)})")
            if not weight > 0:
                raise ValueError(f"weights.{name}: must be > 0, got {weight}")
        return self

    def source_names(self) -> list[str]:
        """The names `weights` keys on: the earlier stages named, then "path" for the file."""
        return self.stages + (["path"] if self.path is not None else [])

    def shares(self, sources: list[str]) -> list[float]:
        """Each source's share of the stage's rows under `weights` (in the order of `sources`, the names of
        `source_groups`); they sum to `ratio`."""
        weights = [(self.weights or {}).get(name, 1.0) for name in sources]
        return [self.ratio * weight / sum(weights) for weight in weights]


class SFTStageSpec(StageSpec):
    kind: Literal["sft"]
    data: DataSource
    replay: ReplaySpec | None = None
    rehearsal: RehearsalSpec | None = None

    trainer_config_class = staticmethod(_sft_config_class)
    data_shapes = SFT_SHAPES
    data_rereadable = True
