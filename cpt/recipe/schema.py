"""The recipe: typed, validated before anything runs.

    run:    {name: quickstart, output_dir: runs, seed: 0}
    model:  {name_or_path: toy}                  # or any Hugging Face folder / hub name
    stages: [ {name: ..., kind: cpt|sft|dpo|grpo, ...}, ... ]   # run in order, each from the previous output
    eval:   {tasks: [addition, reversal, ...]}    # evaluated on the base and after every stage (eval_spec.py)
    launch: {num_processes: 1}

Stage sections are defined next to their stages (cpt/stages/<kind>_config.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from cpt.core.recipe_base import FolderName, StrictModel, check_unique
from cpt.data.earlier import earlier_stage_problem
from cpt.guards.merge_config import merge_problem
from cpt.recipe.eval_spec import EvalSpec, EvalTaskSpec  # noqa: F401  (EvalTaskSpec re-exported)
from cpt.recipe.task_matching import TaskMatching, match_tasks
from cpt.stages.registry import REREADABLE_KINDS, Stage

TOY_MODEL = "toy"


class RunSpec(StrictModel):
    name: FolderName = Field(max_length=100)
    output_dir: str = Field("runs", description="the run directory is OUTPUT_DIR/NAME")
    seed: int = Field(0, ge=0, lt=2**32, description="numpy takes 0 .. 2**32 - 1")


class ModelSpec(StrictModel):
    name_or_path: str = Field(TOY_MODEL, description="'toy' for the embedded model, else an HF path")
    tokenizer: str | None = Field(None, description="defaults to the model's own")
    chat_template: str | None = Field(None, description="a .jinja file, or the template text")
    trust_remote_code: bool = False


class LaunchSpec(StrictModel):
    """How the run is meant to be launched; `cpt plan` prints the matching command."""

    num_processes: int = Field(1, ge=1)
    deepspeed: Literal["zero2", "zero3"] | None = None


class Recipe(StrictModel):
    run: RunSpec
    model: ModelSpec = Field(default_factory=ModelSpec)
    stages: list[Stage] = Field(min_length=1)
    eval: EvalSpec | None = None
    launch: LaunchSpec = Field(default_factory=LaunchSpec)

    @model_validator(mode="after")
    def _trained_in_names_a_stage(self) -> Recipe:
        names = [s.name for s in self.stages]
        for task in self.eval.tasks if self.eval else []:
            if task.trained_in is not None and task.trained_in not in names:
                raise ValueError(
                    f"eval task '{task.name}': trained_in '{task.trained_in}' is not a stage (stages: {', '.join(names)})"
                )
        return self

    @model_validator(mode="after")
    def _earlier_data_names_earlier_data_stages(self) -> Recipe:
        """Replay and adaptive-OSF stage names are caught at `cpt plan`, not when the stage starts."""
        for index, stage in enumerate(self.stages):
            earlier = {s.name: s.kind for s in self.stages[:index]}
            for key, section in stage.earlier_data_sections().items():
                problem = earlier_stage_problem(section.stages, earlier, REREADABLE_KINDS)
                if problem:
                    raise ValueError(f"stages[{index}] ({stage.name}).{key}.stages: {problem}")
        return self

    @model_validator(mode="after")
    def _merged_stages_have_held_out_rows(self) -> Recipe:
        for index, stage in enumerate(self.stages):
            problem = merge_problem(self, index) if stage.merge is not None else None
            if problem:
                raise ValueError(f"stages[{index}] ({stage.name}).merge: {problem}")
        return self

    @model_validator(mode="after")
    def _train_fits_the_launch(self) -> Recipe:
        for index, stage in enumerate(self.stages):
            problem = stage.launch_problem(self.launch.num_processes)
            if problem:
                raise ValueError(f"stages[{index}] ({stage.name}).train: {problem}")
        return self

    def task_stages(self) -> dict[str, str]:
        """Eval task -> the stage that trains it: `trained_in`, else matched by data (task_matching.py)."""
        return self.task_matching().task_stage

    def task_matching(self) -> TaskMatching:
        """Which stage trains each eval task, and the tasks none could be matched to (task_matching.py)."""
        return match_tasks(self.stages, self.eval.tasks if self.eval else [])

    @field_validator("stages")
    @classmethod
    def _unique_stage_names(cls, stages):
        check_unique([s.name for s in stages], "stage names")
        return stages
