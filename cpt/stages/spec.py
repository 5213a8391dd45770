"""What every stage section of a recipe has in common, whatever its kind.

Each stage kind pairs a spec (`<kind>_config.py`, what the recipe may say) with a runner
(`<kind>.py`, a thin adapter to a TRL trainer), as TRL pairs its trainers with their configs, and is
one line of `cpt/stages/registry.py`. The spec states the kind's facts (the shapes its data takes, its
reference model, its plan note, ...) so the runner, plan, preflight and prepare ask the spec, never
test `kind`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from cpt.core.recipe_base import DataSource, FolderName, PeftSpec, StrictModel
from cpt.data.shapes import SFT_SHAPES
from cpt.guards.config import ADAPTER_GUARDS, GuardSpec
from cpt.guards.merge_config import MergeSpec
from cpt.guards.support import schema_refusal
from cpt.stages.trainer_args import check_trainer_args


class StageSpec(StrictModel):
    """Fields shared by all stage kinds. Subclasses add `kind` and their data fields."""

    name: FolderName = Field(max_length=64)
    train: dict[str, Any] = Field(
        default_factory=dict,
        description="settings passed to the TRL config (SFTConfig, ...), over our fast defaults",
    )
    peft: PeftSpec | None = None
    eval: bool = Field(True, description="evaluate the recipe's eval tasks after this stage")
    keep_checkpoints: int = Field(2, ge=1, description="complete resume checkpoints kept")
    skip_bad_batches: int = Field(0, ge=0, description="steps with a non-finite loss or gradient to skip "
                                  "before stopping the stage (cpt/stages/bad_batches.py)")
    guard: GuardSpec | None = Field(None, description="anti-forgetting method: olora, osf, kl_anchor or freeze (cpt/guards)")
    merge: MergeSpec | None = Field(None, description="after the stage, interpolate towards its start within a "
                                    "forgetting budget (cpt/guards/merge_config.py)")

    # The TRL config class `train` is validated against; a function so TRL imports lazily.
    trainer_config_class: ClassVar[Any] = None
    # The row shapes (cpt.data.shapes) the stage's data and a replay file of it may take.
    data_shapes: ClassVar[tuple] = ()
    replay_shapes: ClassVar[tuple] = SFT_SHAPES
    # Whether a later stage may read this stage's data again (replay, adaptive OSF's sample, rehearsal prompts).
    data_rereadable: ClassVar[bool] = False

    def training_sources(self) -> tuple[DataSource, ...]:
        """The data the stage trains on, without replay files (a kind with a `data` field: that)."""
        return (self.data,)

    def text_domains(self) -> list:
        """Domains whose text `cpt prepare` tokenises into the run's token cache (a cpt stage's)."""
        return []

    def reference_model(self) -> str | None:
        """A model folder the recipe names as the stage's reference, else None (the stage's start)."""
        return None

    def named_models(self) -> dict[str, str]:
        """Recipe key -> every model folder the stage names, checked at plan to hold a config.json."""
        reference = self.reference_model()
        return {"reference": reference} if reference else {}

    def check_names(self) -> None:
        """Raise UserError if something the stage names beyond data and models is unknown here (rewards, ...)."""

    def plan_note(self) -> str:
        """What `cpt plan` adds after the stage's settings (the KL a preference or RL stage trains with)."""
        return ""

    def launch_problem(self, num_processes: int) -> str | None:
        """Why the stage's `train` settings cannot run on `num_processes` processes, or None."""
        return None

    @model_validator(mode="after")
    def _guard_fits_the_stage(self):
        guard = self.guard
        if guard is None:
            return self
        if guard.method in ADAPTER_GUARDS and self.peft is not None:
            raise ValueError(f"guard: {guard.method} sets which weights train; remove peft: from this stage")
        if guard.method in ("freeze", "gpm") and self.peft is not None:
            raise ValueError(f"guard: {guard.method} is for full fine-tuning (a LoRA keeps every base weight "
                             "already); remove peft: or the guard")
        if getattr(guard, "density", None) is not None and self.kind not in ("sft", "cpt"):
            raise ValueError(f"guard.density picks the weights from the gradient of the stage's own rows: sft and "
                             f"cpt stages; drop density on this {self.kind} stage")
        refused = schema_refusal(guard.method, self.kind)  # the support table (guards/support.py)
        if refused:
            raise ValueError(refused)
        return self

    def earlier_data_sections(self) -> dict[str, Any]:
        """Recipe key -> section naming earlier stages' data (replay, adaptive OSF's sample)."""
        sections = {}
        if getattr(self, "replay", None) is not None:
            sections["replay"] = self.replay
        adaptive = getattr(self.guard, "adaptive", None)
        if adaptive is not None:
            sections["guard.adaptive"] = adaptive
        rehearsal = getattr(self, "rehearsal", None)
        if rehearsal is not None:
            sections["rehearsal.prompts"] = rehearsal.prompts
        return sections

    @model_validator(mode="after")
    def _shares_leave_room_for_new_data(self):
        """Replay and rehearsal shares add up: together they must leave a share for the stage's own data."""
        parts = [getattr(self, key, None) for key in ("replay", "rehearsal")]
        shares = [part.ratio for part in parts if part is not None]
        if sum(shares) >= 1.0:
            raise ValueError("replay.ratio + rehearsal.ratio must be below 1 (the rest is the stage's own data); "
                             f"got {' + '.join(f'{share:g}' for share in shares)}")
        return self

    @field_validator("train")
    @classmethod
    def _train_fits_trainer_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        problems = check_trainer_args(cls.trainer_config_class, value)
        if problems:
            raise ValueError("\n".join(f"{key}: {why}" for key, why in problems))
        return value
