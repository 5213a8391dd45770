"""Recipe section of a `cpt` stage: continual pretraining (causal LM) on a mixture of text domains.

    - name: pretrain
      kind: cpt
      domains:
        - {name: general, data: {toy: general}, weight: 0.8}
        - {name: code, data: {path: code.jsonl}, weight: 0.2}
      train: {max_steps: 400, max_length: 128}

Weights are static here and normalised to sum to 1; rows are `{"text": ...}`. Sequences are
packed to `train.max_length` tokens.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from cpt.recipe.base import DataSource, StrictModel, check_unique
from cpt.stages.sft_config import _sft_config_class
from cpt.stages.spec import StageSpec


class DomainSpec(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    data: DataSource
    weight: float = Field(1.0, ge=0.0, description="sampling weight; normalised over domains")


class CPTStageSpec(StageSpec):
    kind: Literal["cpt"]
    domains: list[DomainSpec] = Field(min_length=1)

    # CPT trains through SFTTrainer in language-modelling mode (packing on a `text` column).
    trainer_config_class = staticmethod(_sft_config_class)

    @field_validator("domains")
    @classmethod
    def _domains_are_distinct_and_weighted(cls, domains: list[DomainSpec]) -> list[DomainSpec]:
        check_unique([d.name for d in domains], "domain names")
        if sum(d.weight for d in domains) <= 0:
            raise ValueError("domain weights must not all be zero")
        return domains

    def normalised_weights(self) -> dict[str, float]:
        """Domain name -> probability, summing to 1."""
        total = sum(d.weight for d in self.domains)
        return {d.name: d.weight / total for d in self.domains}
