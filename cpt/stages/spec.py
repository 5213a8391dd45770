"""What every stage section of a recipe has in common, whatever its kind.

Each stage kind pairs a spec (`<kind>_config.py`, what the recipe may say) with a runner
(`<kind>.py`, a thin adapter to a TRL trainer), as TRL pairs its trainers with their configs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from cpt.recipe.base import PeftSpec, StrictModel
from cpt.recipe.trainer_args import check_trainer_args

STAGE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class StageSpec(StrictModel):
    """Fields shared by all stage kinds. Subclasses add `kind` and their data fields."""

    name: str = Field(pattern=STAGE_NAME_PATTERN, max_length=64)
    train: dict[str, Any] = Field(
        default_factory=dict,
        description="settings passed to the TRL config (SFTConfig, ...), over our fast defaults",
    )
    peft: PeftSpec | None = None
    eval: bool = Field(True, description="evaluate the recipe's eval tasks after this stage")
    keep_checkpoints: int = Field(2, ge=1, description="complete resume checkpoints kept")
    guard: dict[str, Any] | None = Field(None, description="anti-forgetting method (not available yet)")

    # The TRL config class `train` is validated against; a function so TRL imports lazily.
    trainer_config_class: ClassVar[Any] = None

    @field_validator("guard")
    @classmethod
    def _guards_not_yet_available(cls, value):
        if value is not None:
            raise ValueError("guards (olora, osf, replay, kl_anchor) are not available in this version yet")
        return value

    @field_validator("train")
    @classmethod
    def _train_fits_trainer_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        problems = check_trainer_args(cls.trainer_config_class(), value)
        if problems:
            raise ValueError("\n".join(f"{key}: {why}" for key, why in problems))
        return value
