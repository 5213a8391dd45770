"""What the runner hands a stage: its spec, where it starts from, and where it may write.

A stage reads only `input_model` (the previous stage's output, or the base model) and writes
only under `stage_dir`. It never looks at other stages: lineage is the runner's business, and what a
stage may read of the stages before it (their data, for replay) the runner puts in `earlier`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpt.core.layout import StageLayout
from cpt.core.precision import Precision
from cpt.data.earlier import EarlierStage


@dataclass(frozen=True)
class StageContext:
    spec: Any  # the stage's recipe section (SFTStageSpec, CPTStageSpec, ...)
    input_model: Path  # lineage: where this stage starts
    reference_model: Path  # default KL / DPO reference: the stage's starting model
    stage_dir: Path  # everything this stage writes lives here
    seed: int
    trust_remote_code: bool = False
    chat_template: str | None = None
    tokenizer_source: Path | str | None = None  # default: the input model's folder
    resume_from: Path | None = None  # last complete checkpoint of an interrupted attempt
    precision: Precision | None = None  # chosen by the runner (core/precision.py); None: chosen from spec.train
    token_cache: Path | None = None  # the run's token cache (cpt/data/tokens.py); None: tokenise in memory
    earlier: tuple[EarlierStage, ...] = ()  # the stages before this one and their data (replay, adaptive OSF)

    @property
    def checkpoint_dir(self) -> Path:
        return StageLayout(self.stage_dir).checkpoints

    @property
    def output_dir(self) -> Path:
        """The stage's final model: a plain Hugging Face folder (safetensors, config, tokenizer)."""
        return StageLayout(self.stage_dir).model


@dataclass
class StageResult:
    global_step: int
    metrics: dict[str, Any]
