"""Prompt ids and completion ids as TRL's GRPOTrainer makes them, so that the RFT filter's rollouts (and
the rewards computed on them) match the ones GRPO trains on.

    ids = prompt_token_ids(tokenizer, ["sort 312 ="])                         # plain text: tokenizer(text=...)
    ids = prompt_token_ids(tokenizer, [[{"role": "user", "content": "hi"}]])  # chat: the chat template, with the
                                                                              # assistant turn opened
    trim_at_eos([5, 9, 2, 0, 0], eos_ids={2})  ->  [5, 9, 2]
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Completion:
    """One sampled completion: its text (special tokens dropped) and its token ids up to the first eos."""

    text: str
    ids: list[int]


def is_chat(prompt) -> bool:
    """A prompt given as chat messages (TRL's conversational form) rather than as text."""
    return not isinstance(prompt, str)


def prompt_token_ids(tokenizer, prompts: list, chat_template_kwargs: dict | None = None) -> list[list[int]]:
    """Unpadded token ids per prompt, as GRPOTrainer._tokenize_prompts builds them in TRL 1.16: chat prompts
    through the tokenizer's chat template with add_generation_prompt=True, text prompts through the tokenizer."""
    prompts = list(prompts)  # the tokenizer takes lists, not a datasets Column
    if not prompts:
        return []
    if is_chat(prompts[0]):
        encoded = tokenizer.apply_chat_template(
            conversation=prompts, add_generation_prompt=True, tokenize=True, return_dict=True,
            **(chat_template_kwargs or {}),
        )
        return [list(ids) for ids in encoded["input_ids"]]
    return [list(ids) for ids in tokenizer(text=prompts)["input_ids"]]


def eos_token_ids(tokenizer, generation_config) -> set[int]:
    """The ids that end a completion, as TRL collects them: the generation config's eos ids and the tokenizer's."""
    ids = getattr(generation_config, "eos_token_id", None)
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    return {*ids, tokenizer.eos_token_id} - {None}


def trim_at_eos(ids: list[int], eos_ids: set[int]) -> list[int]:
    """`ids` up to and including the first eos (TRL masks everything after it, padding included)."""
    for position, token in enumerate(ids):
        if token in eos_ids:
            return ids[: position + 1]
    return ids
