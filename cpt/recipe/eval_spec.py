"""The recipe's `eval:` section: which tasks to score after each stage, and how.

    eval:
      tasks:
        - date_format                               # an embedded toy task
        - {name: capitals, general: true}           # old knowledge whose change the report shows
        - {name: mine, path: data/mine.jsonl}       # {prompt, answer} rows, scored by exact match
        - {name: parity, path: data/parity.jsonl, chance: 0.5}   # declared chance level (default: computed)
        - {name: hellaswag, metric: acc_norm}       # any task lm-eval knows (built in or under include_path)
      include_path: [my_lm_eval_tasks/]
      max_examples: 100
      backend: hf                                   # or vllm (needs the vllm extra)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from cpt.core.recipe_base import FolderName, StrictModel, check_unique
from cpt.toy.tasks import TOY_TASKS

EMBEDDED_TASKS = TOY_TASKS


class EvalTaskSpec(StrictModel):
    name: FolderName = Field(max_length=100)
    toy: str | None = Field(None, description="an embedded task (the default when the name is one)")
    path: str | None = Field(None, description="a .jsonl file of {prompt, answer} rows")
    lm_eval: str | None = Field(None, description="a task lm-eval knows (the default for other names)")
    metric: str | None = Field(None, description="the lm-eval metric to report, e.g. acc_norm (default: the first)")
    general: bool = Field(False, description="an old-knowledge task whose change the report shows")
    trained_in: str | None = Field(
        None, description="the stage that trains this task (default: matched by data, cpt/recipe/task_matching.py)"
    )
    chance: float | None = Field(
        None, ge=0.0, lt=1.0,
        description="the score of guessing, e.g. 0.5 for yes/no (default: share of the most frequent answer)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> EvalTaskSpec:
        given = [k for k in ("toy", "path", "lm_eval") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of toy, path, lm_eval; got {', '.join(given)}")
        if not given:
            if self.name in EMBEDDED_TASKS:
                self.toy = self.name
            else:
                self.lm_eval = self.name
        if self.toy is not None and self.toy not in EMBEDDED_TASKS:
            raise ValueError(f"toy: '{self.toy}' is not an embedded task ({', '.join(EMBEDDED_TASKS)})")
        if self.path is not None and self.name in EMBEDDED_TASKS:
            raise ValueError(f"'{self.name}' is an embedded task's name; give your own task another name")
        return self

    @property
    def lm_eval_task(self) -> str:
        """The task name lm-eval runs: the embedded or generated task is named like the column."""
        return self.lm_eval or self.toy or self.name


class EvalSpec(StrictModel):
    tasks: list[EvalTaskSpec] = Field(min_length=1)
    include_path: list[str] = Field(default_factory=list, description="folders of your own lm-eval task YAMLs")
    max_examples: int | None = Field(100, gt=0, description="test examples per task; null = all")
    batch_size: int = Field(64, gt=0)
    max_new_tokens: int | None = Field(None, gt=0, description="overrides the tasks' own generation length")
    num_fewshot: int | None = Field(None, ge=0)
    apply_chat_template: bool = Field(False, description="wrap prompts in the model's chat template")
    backend: Literal["hf", "vllm"] = "hf"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: hf: bf16 on GPU, fp32 on CPU; vllm: the checkpoint's own dtype (fp32 stays fp32)")
    base: bool = Field(True, description="also evaluate the base model (row 0 of the matrix)")

    @field_validator("tasks", mode="before")
    @classmethod
    def _names_are_tasks(cls, tasks):
        if isinstance(tasks, list):
            return [{"name": t} if isinstance(t, str) else t for t in tasks]
        return tasks

    @field_validator("tasks")
    @classmethod
    def _unique_names(cls, tasks: list[EvalTaskSpec]) -> list[EvalTaskSpec]:
        check_unique([t.name for t in tasks], "eval task names")
        return tasks
