"""The `hf` rollout backend: transformers generate, batched with left padding and the KV cache.

Prompts are text or chat messages; both are tokenized as TRL's GRPOTrainer tokenizes them (prompts.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cpt.rollouts.prompts import Completion, eos_token_ids, prompt_token_ids, trim_at_eos


class HFRollouts:
    def __init__(self, model_dir: Path, batch_size: int = 64, trust_remote_code: bool = False, model=None):
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = model or AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=torch.bfloat16 if device == "cuda" else torch.float32, trust_remote_code=trust_remote_code
        ).to(device)
        self.model.eval()
        self.batch_size = batch_size
        self.use_cache = True  # off only to measure what the KV cache saves (benchmarks/grpo_step.py)
        self.eos_ids = eos_token_ids(self.tokenizer, self.model.generation_config)

    def sample(self, prompts: list, k: int, max_new_tokens: int, temperature: float) -> list[list[str]]:
        """`k` sampled completions (new text only) for each prompt, in prompt order."""
        groups = self.sample_completions(prompts, k, max_new_tokens, temperature)
        return [[c.text for c in group] for group in groups]

    @torch.inference_mode()
    def sample_completions(self, prompts: list, k: int, max_new_tokens: int, temperature: float,
                           chat_template_kwargs: dict | None = None, sampling: dict | None = None) -> list[list[Completion]]:
        """`k` completions (text and ids) for each prompt (text or chat messages), in prompt order. `sampling`:
        generate's top_p, top_k, min_p, repetition_penalty (default: none of them, top_k 0 as in TRL)."""
        if temperature <= 0 and k > 1:  # greedy: every sample is the same; generate returns only one
            greedy = self.sample_completions(prompts, 1, max_new_tokens, 0.0, chat_template_kwargs, sampling)
            return [group * k for group in greedy]
        all_ids = prompt_token_ids(self.tokenizer, prompts, chat_template_kwargs)
        groups: list[list[Completion]] = []
        per_call = max(1, self.batch_size // k)  # prompts per call; each expands to k sequences
        for start in range(0, len(all_ids), per_call):
            new_ids = self._generate(all_ids[start : start + per_call], k, max_new_tokens, temperature, sampling or {})
            completions = [self._completion(ids) for ids in new_ids]
            groups += [completions[i : i + k] for i in range(0, len(completions), k)]
        return groups

    def _generate(self, prompt_ids: list[list[int]], k: int, max_new_tokens: int, temperature: float, sampling: dict):
        """The new tokens of `k` sequences per prompt (rows in prompt order), padding included."""
        batch = self.tokenizer.pad({"input_ids": prompt_ids}, padding=True, return_tensors="pt").to(self.model.device)
        # Sampling as TRL's GRPOTrainer does: top_k 0 (off) unless the caller passes the stage's own settings
        sampler = {"top_k": 0, **{name: value for name, value in sampling.items() if value is not None}} if temperature > 0 else {}
        output = self.model.generate(
            **batch,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            **sampler,
            max_new_tokens=max_new_tokens,
            num_return_sequences=k,
            pad_token_id=self.tokenizer.pad_token_id,
            use_cache=self.use_cache,
        )
        return output[:, batch["input_ids"].shape[1] :].tolist()

    def _completion(self, new_ids: list[int]) -> Completion:
        ids = trim_at_eos(new_ids, self.eos_ids)
        return Completion(self.tokenizer.decode(ids, skip_special_tokens=True), ids)
