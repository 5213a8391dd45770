"""The `vllm` rollout backend (needs the `vllm` extra and a CUDA GPU): vllm.LLM with SamplingParams(n=k).

Not exercised on our CPU machines; tests/cpt/rollouts marks the test that runs it where vLLM and CUDA exist.
"""

from __future__ import annotations

from pathlib import Path


class VLLMRollouts:
    def __init__(self, model_dir: Path, trust_remote_code: bool = False):
        from vllm import LLM

        self.llm = LLM(model=str(model_dir), trust_remote_code=trust_remote_code, gpu_memory_utilization=0.5)

    def sample(self, prompts: list[str], k: int, max_new_tokens: int, temperature: float) -> list[list[str]]:
        from vllm import SamplingParams

        params = SamplingParams(n=k, temperature=temperature, max_tokens=max_new_tokens)
        return [[choice.text for choice in result.outputs] for result in self.llm.generate(prompts, params)]
