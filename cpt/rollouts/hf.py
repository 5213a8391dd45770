"""The `hf` rollout backend: transformers generate, batched with left padding and the KV cache."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


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

    @torch.inference_mode()
    def sample(self, prompts: list[str], k: int, max_new_tokens: int, temperature: float) -> list[list[str]]:
        if temperature <= 0 and k > 1:  # greedy: every sample is the same; generate returns only one
            return [group * k for group in self.sample(prompts, 1, max_new_tokens, 0.0)]
        groups: list[list[str]] = []
        per_call = max(1, self.batch_size // k)  # prompts per call; each expands to k sequences
        for start in range(0, len(prompts), per_call):
            batch = self.tokenizer(prompts[start : start + per_call], return_tensors="pt", padding=True)
            batch = batch.to(self.model.device)
            output = self.model.generate(
                **batch,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_k=0,
                max_new_tokens=max_new_tokens,
                num_return_sequences=k,
                pad_token_id=self.tokenizer.pad_token_id,
                use_cache=self.use_cache,
            )
            texts = self.tokenizer.batch_decode(output[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
            groups += [texts[i : i + k] for i in range(0, len(texts), k)]
        return groups
