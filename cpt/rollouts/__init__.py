"""Rollouts: sampled completions from a model, behind one small interface used by GRPO and the RFT filter.

    rollouts = make_rollouts(RolloutSpec(backend="hf"), model_dir)
    groups = rollouts.sample(["sort 312 ="], k=4, max_new_tokens=16, temperature=1.0)   # [[4 completions]]
    chat = rollouts.sample_completions([[{"role": "user", "content": "sort 312"}]], 4, 16, 1.0)  # text + ids

Prompts are text or chat messages, tokenized as TRL's GRPOTrainer does (prompts.py: the chat template with
the assistant turn opened), and completion ids end at the first eos, as the ids TRL gives rewards do.

    hf    transformers generate: batched, left-padded, KV cache; runs on a CPU (the default)
    vllm  vLLM (the `vllm` extra, CUDA only): the filter uses vllm.LLM; GRPO uses TRL's use_vllm
          in `colocate` (same GPUs) or `server` mode (a `trl vllm-serve` process)

GRPO does its own generation inside TRL; `grpo_generation_args` turns the same choice into GRPOConfig fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from pydantic import Field

from cpt.core.recipe_base import StrictModel
from cpt.errors import as_user_error
from cpt.rollouts.prompts import Completion
from eval.backends import require_vllm


class RolloutSpec(StrictModel):
    backend: Literal["hf", "vllm"] = "hf"
    vllm_mode: Literal["colocate", "server"] = Field("colocate", description="vllm only: TRL's vllm_mode")
    vllm_server: str | None = Field(None, description="vllm server mode: base URL of `trl vllm-serve`")
    batch_size: int = Field(64, gt=0, description="prompts per generate call (hf)")


class Rollouts(Protocol):
    def sample(self, prompts: list, k: int, max_new_tokens: int, temperature: float) -> list[list[str]]:
        """`k` sampled completions (new text only) for each prompt, in prompt order."""

    def sample_completions(self, prompts: list, k: int, max_new_tokens: int, temperature: float,
                           chat_template_kwargs: dict | None = None, sampling: dict | None = None) -> list[list[Completion]]:
        """`k` completions (text and token ids) for each prompt (text or chat messages), in prompt order;
        `sampling`: top_p, top_k, min_p, repetition_penalty, as GRPOConfig names them."""


def make_rollouts(spec: RolloutSpec, model_dir: Path, trust_remote_code: bool = False) -> Rollouts:
    if spec.backend == "vllm":
        as_user_error(require_vllm, "rollout.backend")
        from cpt.rollouts.vllm_backend import VLLMRollouts

        return VLLMRollouts(model_dir, trust_remote_code)
    from cpt.rollouts.hf import HFRollouts

    return HFRollouts(model_dir, spec.batch_size, trust_remote_code)


def grpo_generation_args(spec: RolloutSpec) -> dict:
    """The GRPOConfig fields that select the rollout backend."""
    if spec.backend == "hf":
        return {"use_vllm": False}
    args = {"use_vllm": True, "vllm_mode": spec.vllm_mode}
    if spec.vllm_mode == "server" and spec.vllm_server:
        args["vllm_server_base_url"] = spec.vllm_server
    return args
