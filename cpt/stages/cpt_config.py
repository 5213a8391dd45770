"""Recipe section of a `cpt` stage: continual pretraining (causal LM) on a mixture of text domains.

    - name: pretrain
      kind: cpt
      domains:
        - {name: general, data: {toy: general}, weight: 0.8}
        - {name: code, data: {path: code.jsonl}, weight: 0.2}
      mixing: {learner: doremi, update_every: 20, step_size: 1.0, smoothing: 1.0e-3, held_out_sequences: 8}
      replay: {stages: [earlier_stage], ratio: 0.1}     # optional, see sft_config.ReplaySpec
      rehearsal: {prompts: {path: prompts.txt}, ratio: 0.1}   # optional, see rehearsal_config.py
      train: {max_steps: 400, max_length: 128}

Rows are `{"text": ...}`; each packed `train.max_length`-token sequence comes from one domain,
drawn by the weights (normalised to sum to 1). `mixing.learner` is `static` (the weights as
given; the default), `doremi` (every domain's held-out excess loss over a reference, clipped per
token) or `odm` (an EXP3 bandit: one drawn domain's held-out loss per update; it starts uniform),
learned every `update_every` steps. See data_mixing/learners.py for each paper's algorithm.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from cpt.core.recipe_base import DataSource, StrictModel, check_unique
from cpt.data.shapes import TEXT_SHAPES
from cpt.stages.rehearsal_config import REHEARSAL_DOMAIN, RehearsalSpec
from cpt.stages.sft_config import ReplaySpec, _sft_config_class
from cpt.stages.spec import StageSpec

REPLAY_DOMAIN = "replay"
DEFAULT_HELD_OUT = 8  # sequences per domain for the learned learners
MAX_DOREMI_STEP = 100.0  # past this one update puts all weight on one domain; surely a typo
# TRL packing settings: the mixture stream always packs ("wrapped") to max_length itself.
STREAM_OWNED = ("packing", "packing_strategy", "padding_free", "dataset_text_field", "dataset_kwargs", "eval_packing")


class DomainSpec(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    data: DataSource
    weight: float = Field(1.0, ge=0.0, description="sampling weight (the start, for learned mixing); normalised")


class MixingSpec(StrictModel):
    """How the domain weights evolve while training."""

    learner: Literal["static", "doremi", "odm"] = "static"
    update_every: int = Field(20, ge=1, description="optimizer steps between weight updates")
    step_size: float | None = Field(
        None, gt=0.0, description="doremi: eta (default 1.0); odm: a fixed rate in (0, 1/K] instead of the paper's schedule"
    )
    smoothing: float = Field(1e-3, ge=0.0, lt=1.0, description="doremi: share of the uniform mix in the weights")
    reward_decay: float = Field(
        0.9, ge=0.0, lt=1.0, description="odm: moving-average factor of the drawn domain's importance-weighted reward"
    )
    reference: str | None = Field(None, description="doremi: reference model folder (default: the stage's start)")
    held_out_sequences: int | None = Field(
        None, ge=0, le=10_000, description=f"held-out sequences per domain (default {DEFAULT_HELD_OUT}; 0 for static)"
    )

    @field_validator("step_size")
    @classmethod
    def _step_size_in_range(cls, value: float | None, info: ValidationInfo) -> float | None:
        learner = info.data.get("learner")
        if value is not None and learner == "static":
            raise ValueError("the static learner takes no step size")
        if value is not None and learner == "doremi" and value > MAX_DOREMI_STEP:
            raise ValueError(f"doremi's step size must be in (0, {MAX_DOREMI_STEP:g}] (1.0 in the paper), got {value}")
        return value

    @field_validator("reference")
    @classmethod
    def _reference_is_doremi(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("learner") != "doremi":
            raise ValueError("only the doremi learner uses a reference model")
        return value

    @field_validator("held_out_sequences")
    @classmethod
    def _learned_needs_held_out(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value == 0 and info.data.get("learner") not in (None, "static"):
            raise ValueError(f"the {info.data['learner']} learner learns from held-out losses: at least 1 sequence")
        return value

    def held_out(self) -> int:
        """Held-out sequences per domain: as set, else 8 for a learned mix and none for static weights."""
        if self.held_out_sequences is not None:
            return self.held_out_sequences
        return 0 if self.learner == "static" else DEFAULT_HELD_OUT


class CPTStageSpec(StageSpec):
    kind: Literal["cpt"]
    domains: list[DomainSpec] = Field(min_length=1)
    mixing: MixingSpec = Field(default_factory=MixingSpec)
    replay: ReplaySpec | None = None
    rehearsal: RehearsalSpec | None = None

    # Validated against SFTConfig (max_length, ...); cpt trains with a plain transformers Trainer
    # on the mixture stream (cpt/stages/cpt.py says why).
    trainer_config_class = staticmethod(_sft_config_class)
    data_shapes = replay_shapes = TEXT_SHAPES
    data_rereadable = True

    def training_sources(self) -> tuple[DataSource, ...]:
        return tuple(domain.data for domain in self.domains)

    def text_domains(self) -> list[DomainSpec]:
        return self.domains

    def named_models(self) -> dict[str, str]:
        return {"mixing.reference": self.mixing.reference} if self.mixing.reference else {}

    @field_validator("domains")
    @classmethod
    def _domains_are_distinct_and_weighted(cls, domains: list[DomainSpec]) -> list[DomainSpec]:
        check_unique([d.name for d in domains], "domain names")
        if sum(d.weight for d in domains) <= 0:
            raise ValueError("domain weights must not all be zero")
        return domains

    @field_validator("train")
    @classmethod
    def _train_fits_the_stream(cls, train: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(train.get("max_steps"), int) or train["max_steps"] <= 0:
            raise ValueError("max_steps: a cpt stage trains from an endless mixture stream; set max_steps > 0")
        if train.get("dataloader_num_workers", 0) != 0:
            raise ValueError("dataloader_num_workers: must be 0 (the stream's position lives in the training process)")
        if "max_length" in train and not (isinstance(train["max_length"], int) and train["max_length"] >= 2):
            raise ValueError("max_length: the packed sequence length, an integer >= 2")
        owned = [key for key in STREAM_OWNED if key in train]
        if owned:
            raise ValueError(f"{owned[0]}: set by the mixture stream (documents are always packed to max_length)")
        return train

    @model_validator(mode="after")
    def _mixing_fits_domains(self) -> CPTStageSpec:
        names = [d.name for d in self.domains]
        if self.replay is not None and REPLAY_DOMAIN in names:
            raise ValueError(f"domains: '{REPLAY_DOMAIN}' is the name replay data takes; rename that domain")
        k, step = len(names), self.mixing.step_size
        if self.mixing.learner == "odm" and step is not None and step > 1.0 / k:
            raise ValueError(f"mixing.step_size: odm's rate must be in (0, 1/K] = (0, {1.0 / k:.3g}] for {k} domains")
        if self.mixing.learner != "static" and k < 2:
            raise ValueError(f"mixing.learner: {self.mixing.learner} needs at least 2 domains to mix")
        return self

    @model_validator(mode="after")
    def _rehearsal_domain_is_free(self) -> CPTStageSpec:
        if self.rehearsal is not None and REHEARSAL_DOMAIN in [d.name for d in self.domains]:
            raise ValueError(f"domains: '{REHEARSAL_DOMAIN}' is the name rehearsal rows take; rename that domain")
        return self

    def normalised_weights(self) -> dict[str, float]:
        """Domain name -> probability, summing to 1."""
        total = sum(d.weight for d in self.domains)
        return {d.name: d.weight / total for d in self.domains}
