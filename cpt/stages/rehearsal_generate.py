"""Generation for self-synthesized rehearsal: the starting model's greedy answers to prompts, tokenized
exactly as TRL's SFTTrainer will tokenize them, and new prompts the model writes from a seed.

    ids = [prompt_ids(tokenizer, p) for p in prompts]        # a str, or a list of chat messages
    for answers in greedy_answers(model, tokenizer, ids, max_new_tokens=64, batch_size=16):
        ...                                                   # per batch: [(text, reached_eos), ...]
    lines = prompts_from_seed(model, tokenizer, "sort 3 1 2 =\\n", count=64, ...)

This is transformers' `generate` (batched, left-padded, KV cache, stopping at EOS); what we add is the
prompt encoding that matches training (plain prompts through the tokenizer's own call, chat prompts
through `apply_chat_template(add_generation_prompt=True)`, as trl's `_tokenize` does), answers cut at
the first EOS and marked finished or not, and the per-batch yield that lets the caller keep what is done.
cpt/rollouts/hf.py samples from text prompts for GRPO; it re-tokenizes text, which is not the same
ids as a chat template's for every tokenizer, so it is not used here.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def prompt_ids(tokenizer, prompt: str | list[dict]) -> list[int]:
    """The token ids the model sees before its answer when trained on (prompt, answer) by TRL's SFTTrainer."""
    if isinstance(prompt, list):
        encoded = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)
        return list(encoded["input_ids"])
    return list(tokenizer(prompt)["input_ids"])


def eos_ids(model, tokenizer) -> list[int]:
    """Every id that ends an answer: the model's generation config's and the tokenizer's eos."""
    configured = model.generation_config.eos_token_id
    ids = configured if isinstance(configured, list) else [configured]
    return sorted({i for i in [*ids, tokenizer.eos_token_id] if i is not None})


@torch.inference_mode()
def greedy_answers(model, tokenizer, prompts: list[list[int]], max_new_tokens: int,
                   batch_size: int) -> Iterator[list[tuple[str, bool]]]:
    """Per batch of `prompts` (token ids), each prompt's greedy answer up to its first EOS (the EOS not
    included) and whether it reached one within `max_new_tokens`."""
    stop = eos_ids(model, tokenizer)
    for start in range(0, len(prompts), batch_size):
        output, width = _generate(model, tokenizer.pad_token_id, prompts[start:start + batch_size], stop,
                                  do_sample=False, max_new_tokens=max_new_tokens)
        yield [_answer(tokenizer, row[width:].tolist(), stop) for row in output]


@torch.inference_mode()
def prompts_from_seed(model, tokenizer, seed: str, count: int, temperature: float, max_prompt_tokens: int,
                      batch_size: int, rng_seed: int) -> list[str]:
    """Up to `count` distinct prompts the model writes by continuing `seed` (sampled): the first line of
    each continuation, stripped, that is neither empty nor one of the seed's own lines. Sampling stops
    after 4 * count continuations, so a model that repeats itself yields fewer prompts."""
    stop = eos_ids(model, tokenizer)
    seed_ids = prompt_ids(tokenizer, seed)
    known = {line.strip() for line in seed.splitlines()}
    found: list[str] = []
    with torch.random.fork_rng(devices=[]):  # seeded, and the caller's RNG state left as it was
        torch.manual_seed(rng_seed)
        for _ in range(0, 4 * count, batch_size):
            output, width = _generate(model, tokenizer.pad_token_id, [seed_ids] * batch_size, stop, do_sample=True,
                                      temperature=temperature, top_k=0, max_new_tokens=max_prompt_tokens,
                                      stop_strings=["\n"], tokenizer=tokenizer)
            for row in output:
                line = _answer(tokenizer, row[width:].tolist(), stop)[0].split("\n")[0].strip()
                if line and line not in known:
                    known.add(line)
                    found.append(line)
            if len(found) >= count:
                break
    return found[:count]


def _generate(model, pad: int | None, batch: list[list[int]], stop: list[int], **settings):
    """`model.generate` on left-padded `batch`; returns the output ids and the padded prompt width."""
    pad = stop[0] if pad is None else pad
    width = max(len(ids) for ids in batch)
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=model.device)
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=model.device)
    output = model.generate(input_ids=input_ids, attention_mask=mask, eos_token_id=stop, pad_token_id=pad,
                            **settings)
    return output, width


def _answer(tokenizer, new_ids: list[int], stop: list[int]) -> tuple[str, bool]:
    ends = [i for i, token in enumerate(new_ids) if token in stop]
    cut = new_ids[: ends[0]] if ends else new_ids
    return tokenizer.decode(cut, skip_special_tokens=True), bool(ends)
