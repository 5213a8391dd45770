"""The stage kinds, one line each.

A kind is two files: `<kind>_config.py`, its recipe section (a `StageSpec` subclass that states the
kind's facts: data shapes, reference model, plan note, launch checks), and `<kind>.py`, whose
`run(ctx) -> StageResult` trains it through a TRL trainer. Adding a kind is those two files and its
spec class in `STAGE_SPECS`; the recipe schema, the runner, `cpt plan`, preflight and `cpt prepare`
read everything else from the spec.
"""

from __future__ import annotations

import importlib
from functools import partial
from typing import Annotated, Union, get_args

from pydantic import Field

from cpt.stages.cpt_config import CPTStageSpec
from cpt.stages.dpo_config import DPOStageSpec
from cpt.stages.grpo_config import GRPOStageSpec
from cpt.stages.sft_config import SFTStageSpec

STAGE_SPECS = (CPTStageSpec, SFTStageSpec, DPOStageSpec, GRPOStageSpec)


def kind_of(spec_class) -> str:
    """The `kind:` value a spec class is chosen by (its `kind: Literal[...]` field)."""
    return get_args(spec_class.model_fields["kind"].annotation)[0]


STAGE_KINDS = tuple(kind_of(spec) for spec in STAGE_SPECS)
# The kinds whose data a later stage may read again, in recipe order ("cpt", "sft").
REREADABLE_KINDS = tuple(kind_of(spec) for spec in STAGE_SPECS if spec.data_rereadable)
# A recipe's stage section: pydantic picks the spec class by `kind`.
Stage = Annotated[Union[STAGE_SPECS], Field(discriminator="kind")]  # noqa: UP007  (a tuple of classes)


def _run(kind: str, ctx):
    # The runner module is imported when its stage runs: `cpt plan` never imports TRL's trainers.
    return importlib.import_module(f"cpt.stages.{kind}").run(ctx)


# kind -> run(ctx): trains one stage (tests replace an entry to watch a stage run).
STAGE_RUNNERS = {kind: partial(_run, kind) for kind in STAGE_KINDS}
