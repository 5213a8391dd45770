"""Recipe section of an `sft` stage: supervised fine-tuning through TRL's SFTTrainer.

    - name: sft_a
      kind: sft
      data: {toy: addition}            # or {path: data.jsonl} / {hf: org/name, split: train}
      peft: {r: 16, alpha: 32}         # optional LoRA, merged after the stage
      replay: {stages: [pretrain], ratio: 0.2}   # optional: 20% of the rows from earlier stages' data
      train: {max_steps: 300, learning_rate: 1.0e-3}

Data rows are prompt/completion (loss on the completion only), chat `messages`, or `text`.
`replay` (also on cpt stages) names earlier stages whose training data is reused and/or a replay
file (`path`), and the share of replayed rows (`ratio`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from cpt.errors import UserError
from cpt.recipe.base import DataSource, StrictModel
from cpt.stages.spec import StageSpec


def _sft_config_class():
    from trl import SFTConfig

    return SFTConfig


class ReplaySpec(StrictModel):
    """Old data replayed in a stage at a fixed share, against forgetting."""

    stages: list[str] = Field(default_factory=list, description="earlier stages whose training data is replayed")
    path: str | None = Field(None, description="a replay file: .jsonl, .json, .parquet or .txt")
    ratio: float = Field(gt=0.0, lt=1.0, description="share of replayed rows (sft) or sequences (cpt)")

    @model_validator(mode="after")
    def _has_a_source(self) -> ReplaySpec:
        if not self.stages and self.path is None:
            raise ValueError("give stages (earlier stage names) and/or path (a replay file)")
        return self

    def sources(self, run_recipe: dict[str, Any], stage_name: str) -> list[DataSource]:
        """The data sources replayed: the named earlier stages' data (from the run's recipe.json), then `path`."""
        stages = run_recipe.get("stages", [])
        names = [s["name"] for s in stages]
        earlier = names[: names.index(stage_name)] if stage_name in names else names
        sources = []
        for name in self.stages:
            if name not in earlier:
                raise UserError(f"stage {stage_name}: replay.stages: '{name}' is not an earlier stage "
                                f"(earlier: {', '.join(earlier) or 'none'})")
            stage = stages[names.index(name)]
            if stage["kind"] == "cpt":
                sources += [DataSource(**d["data"]) for d in stage["domains"]]
            elif stage["kind"] == "sft":
                sources.append(DataSource(**stage["data"]))
            else:
                raise UserError(f"stage {stage_name}: replay.stages: '{name}' is a {stage['kind']} stage; "
                                "only cpt and sft data can be replayed")
        if self.path is not None:
            sources.append(DataSource(path=self.path))
        return sources


class SFTStageSpec(StageSpec):
    kind: Literal["sft"]
    data: DataSource
    replay: ReplaySpec | None = None

    trainer_config_class = staticmethod(_sft_config_class)
