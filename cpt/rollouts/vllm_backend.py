"""The `vllm` rollout backend (needs the `vllm` extra and a CUDA GPU): vllm.LLM with SamplingParams(n=k).

Prompts (text or chat messages) are tokenized by the model's own tokenizer as TRL's GRPOTrainer does
(prompts.py) and handed to vLLM as token ids, so a chat template's special tokens are not added twice.
Not exercised on our CPU machines; tests/cpt/rollouts marks the test that runs it where vLLM and CUDA exist.
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer

from cpt.rollouts.prompts import Completion, prompt_token_ids


class VLLMRollouts:
    def __init__(self, model_dir: Path, trust_remote_code: bool = False, llm=None):
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
        if llm is None:
            from vllm import LLM

            llm = LLM(model=str(model_dir), trust_remote_code=trust_remote_code, gpu_memory_utilization=0.5)
        self.llm = llm

    def sample(self, prompts: list, k: int, max_new_tokens: int, temperature: float) -> list[list[str]]:
        """`k` sampled completions (new text only) for each prompt, in prompt order."""
        return [[c.text for c in group] for group in self.sample_completions(prompts, k, max_new_tokens, temperature)]

    def sample_completions(self, prompts: list, k: int, max_new_tokens: int, temperature: float,
                           chat_template_kwargs: dict | None = None, sampling: dict | None = None) -> list[list[Completion]]:
        """`k` completions (text and ids; vLLM's ids end with the eos that stopped them) for each prompt.
        `sampling`: top_p, top_k, min_p, repetition_penalty, as SamplingParams names them (None: vLLM's default)."""
        from vllm import SamplingParams

        chosen = {name: value for name, value in (sampling or {}).items() if value is not None}
        params = SamplingParams(n=k, temperature=temperature, max_tokens=max_new_tokens, **chosen)
        ids = prompt_token_ids(self.tokenizer, prompts, chat_template_kwargs)
        results = self.llm.generate([{"prompt_token_ids": p} for p in ids], params)
        return [[Completion(choice.text, list(choice.token_ids)) for choice in result.outputs] for result in results]
