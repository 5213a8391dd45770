"""Recipe section of a `grpo` stage: GRPO/RFT through TRL's GRPOTrainer, KL to the starting model on.

    - name: grpo_sorting
      kind: grpo
      data: {toy: sorting}                       # rows {prompt, answer, ...}; columns reach the rewards
      rewards:
        - {name: exact_match, weight: 1.0}
        - {name: length_penalty, weight: 1.0, args: {max_tokens: 8, coef: 0.05}}
      rollout: {backend: hf}                     # or vllm (the vllm extra; TRL's colocate or server mode)
      filter: {rollouts: 4, drop_all_succeeded: true}   # optional RFT pre-pass on the starting model
                                                  # (success: exact_match >= 1; success_rewards: to choose)
      train: {max_steps: 50, beta: 0.04, num_generations: 4, max_completion_length: 16, loss_type: dapo}

TRL's own default is beta 0 (no reference, no KL); ours is 0.04, with the stage's starting model as the
reference, because RL that stays close to where it started forgets less.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from cpt.core.recipe_base import DataSource, StrictModel
from cpt.data.shapes import PROMPT_SHAPES
from cpt.errors import UserError, as_user_error
from cpt.rewards import resolve_reward
from cpt.rewards.builtin import BUILTIN_REWARDS, SHAPING_REWARDS
from cpt.rollouts import RolloutSpec, require_vllm
from cpt.stages.spec import StageSpec
from cpt.stages.trainer_fields import trainer_defaults

DEFAULT_BETA = 0.04
# What a reward gets from TRL and the rows, not from its `args`.
REWARD_CALL_ARGS = ("prompts", "completions", "completion_ids", "answer")


def _grpo_config_class():
    from trl import GRPOConfig

    return GRPOConfig


class RewardSpec(StrictModel):
    name: str = Field(description=f"one of {', '.join(BUILTIN_REWARDS)}, or package.module:function")
    weight: float = 1.0
    args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the reward")

    @field_validator("name")
    @classmethod
    def _known_or_dotted(cls, name: str) -> str:
        if name not in BUILTIN_REWARDS and ":" not in name:
            raise ValueError(f"'{name}' is not one of {', '.join(BUILTIN_REWARDS)} and not a package.module:function")
        return name

    @model_validator(mode="after")
    def _builtin_args_fit(self) -> RewardSpec:
        """A built-in reward's `args` are its own keyword arguments, the required ones given: a typo or a
        missing `pattern` would otherwise fail at the first reward call, mid-training."""
        function = BUILTIN_REWARDS.get(self.name)
        if function is None:
            return self
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        params = {n: p for n, p in inspect.signature(function).parameters.items()
                  if n not in REWARD_CALL_ARGS and p.kind in kinds}
        unknown = [key for key in self.args if key not in params]
        if unknown:
            raise ValueError(f"args.{unknown[0]}: not an argument of {self.name} (its args: {', '.join(params) or 'none'})")
        missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in self.args]
        if missing:
            raise ValueError(f"args.{missing[0]}: the {self.name} reward needs it")
        if self.name == "regex":
            try:
                re.compile(self.args["pattern"])
            except (re.error, TypeError) as exc:
                raise ValueError(f"args.pattern: not a valid regular expression ({exc})") from None
        return self


class FilterSpec(StrictModel):
    """RFT instance filtering: drop prompts on which the starting model's K rollouts all fail (or all succeed).

    Success is judged on correctness alone: the unweighted sum of the `success_rewards` (by default every
    reward but the shaping ones, regex and length_penalty) reaching `success_reward`. A negative shaping
    reward (a length penalty) would otherwise push every correct answer below the bar, and the training
    weights would move it (exact_match at weight 0.5 could never reach 1)."""

    rollouts: int = Field(4, ge=2, description="K samples per prompt")
    success_reward: float = Field(1.0, description="a rollout succeeds when its success_rewards' sum reaches this")
    success_rewards: list[str] | None = Field(
        None, min_length=1, description="names of the rewards that judge success (default: all but regex, length_penalty)")
    drop_all_succeeded: bool = Field(False, description="also drop prompts every rollout solves (zero advantage)")


class GRPOStageSpec(StageSpec):
    kind: Literal["grpo"]
    data: DataSource
    rewards: list[RewardSpec] = Field(default_factory=lambda: [RewardSpec(name="exact_match")], min_length=1)
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)
    filter: FilterSpec | None = None

    trainer_config_class = staticmethod(_grpo_config_class)
    data_shapes = PROMPT_SHAPES

    @model_validator(mode="after")
    def _success_rewards_are_rewards(self) -> GRPOStageSpec:
        names = [r.name for r in self.rewards]
        for name in (self.filter.success_rewards or []) if self.filter else []:
            if name not in names:
                raise ValueError(f"filter.success_rewards: '{name}' is not one of this stage's rewards ({', '.join(names)})")
        return self

    def success_reward_indices(self) -> list[int]:
        """Which of `rewards` the RFT filter judges success on (see FilterSpec)."""
        chosen = self.filter.success_rewards if self.filter else None
        if chosen:
            return [i for i, r in enumerate(self.rewards) if r.name in chosen]
        judged = [i for i, r in enumerate(self.rewards) if r.name not in SHAPING_REWARDS]
        return judged or list(range(len(self.rewards)))  # only shaping rewards: they are all there is to judge

    @field_validator("train")
    @classmethod
    def _grpo_train_settings(cls, train: dict[str, Any]) -> dict[str, Any]:
        if "reward_weights" in train:
            raise ValueError("reward_weights: set each reward's weight under rewards: instead")
        if train.get("num_generations", 2) < 2:
            raise ValueError("num_generations: GRPO needs at least 2 completions per prompt")
        if train.get("beta", DEFAULT_BETA) < 0:
            raise ValueError("beta: the KL coefficient must be >= 0 (0 turns the KL term and the reference off)")
        return train

    def check_names(self) -> None:
        """Every reward resolves (a builtin or module:function), and vLLM is installed if the rollout names it."""
        for reward in self.rewards:
            try:
                resolve_reward(reward.name)
            except UserError as exc:
                raise UserError(f"stage {self.name}: {exc}") from None
        if self.rollout.backend == "vllm":
            as_user_error(require_vllm, f"stage {self.name}: rollout.backend")

    def plan_note(self) -> str:
        beta = self.train.get("beta", DEFAULT_BETA)
        return f"  (KL beta {beta})" if beta > 0 else "  (beta 0: no KL, reference unused)"

    def launch_problem(self, num_processes: int) -> str | None:
        """Why the generation batch cannot be split into groups of num_generations, or None."""
        get = {**trainer_defaults(_grpo_config_class), **self.train}.get  # TRL's defaults where the recipe is silent
        steps = get("steps_per_generation") or get("gradient_accumulation_steps")
        batch = get("generation_batch_size") or get("per_device_train_batch_size") * num_processes * steps
        if batch % get("num_generations"):
            return (
                f"the generation batch ({batch} = per_device_train_batch_size {get('per_device_train_batch_size')}"
                f" x {num_processes} process(es) x steps_per_generation {steps}) must divide by num_generations"
                f" {get('num_generations')}: each prompt needs a whole group of completions"
            )
        return None
