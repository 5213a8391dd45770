"""The toy model: a randomly initialised ~0.9M-parameter Llama, saved as an HF folder with safetensors.

Sized so that the quickstart (pretraining included) runs in minutes on a 2-core CPU without native
bf16: 128 wide and 4 deep, four heads of 64. Narrower or shallower variants measured here did not
learn the date_format task in 400 steps; wider ones cost more per step than the budget allows.

It is deliberately untrained; the quickstart's first stage pretrains it on the "general" domain.
See it built with `python -m cpt.toy DIR`.
"""

import contextlib
from pathlib import Path

import torch
from transformers import (
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from cpt.toy.tokenizer import MAX_LENGTH

ARCHITECTURE = {
    "hidden_size": 128,
    "intermediate_size": 344,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": MAX_LENGTH,
    "tie_word_embeddings": True,
    "rms_norm_eps": 1e-5,
}


def toy_config(tokenizer: PreTrainedTokenizerBase) -> LlamaConfig:
    """The toy LlamaConfig, with vocabulary and special token ids taken from `tokenizer`."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **ARCHITECTURE,
    )


def init_model(tokenizer: PreTrainedTokenizerBase, seed: int) -> LlamaForCausalLM:
    """A randomly initialised toy model; the same seed gives the same weights."""
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG state as it was
        torch.manual_seed(seed)
        model = LlamaForCausalLM(toy_config(tokenizer))
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=32,
    )
    return model


@contextlib.contextmanager
def _quiet_progress():
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def save_model(tokenizer: PreTrainedTokenizerBase, directory: Path, seed: int) -> int:
    """Initialise and save the toy model into `directory`; returns its parameter count."""
    model = init_model(tokenizer, seed)
    with _quiet_progress():
        model.save_pretrained(directory)
    return sum(p.numel() for p in model.parameters())
