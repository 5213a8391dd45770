"""The plain-library side of benchmarks/stage_throughput.py: each stage kind written the way a user would
with TRL / transformers alone, on the same model, data and trainer settings as our stage.

    measured = run_plain("sft", model_dir, toy_root / "tasks" / "addition" / "train.jsonl", config_kwargs, workdir)
    # {"train_seconds": ..., "wall_seconds": ..., "tokens": ...}

cpt: a transformers `Trainer` on the domain's text, tokenised and cut into max_length blocks up front
(`group_texts` of transformers' run_clm.py; our stage streams and packs the same way, so both train on
full rows). sft / dpo / grpo: TRL's SFTTrainer, DPOTrainer (reference = None: TRL reloads the starting
model, as our default does) and GRPOTrainer with our built-in exact-match reward function (the workload).
"""

from __future__ import annotations

import time
from pathlib import Path

CPT_ONLY_KEYS = ("max_length",)  # SFTConfig fields our cpt stage reads that TrainingArguments lacks


def run_plain(kind: str, model_dir: Path, data_file: Path, config_kwargs: dict, workdir: Path) -> dict:
    """Train `kind` on `data_file` with `config_kwargs` (the TRL/transformers config fields); what it took."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config_kwargs = {**config_kwargs, "output_dir": str(workdir / f"plain-{kind}"), "use_cpu": not torch.cuda.is_available()}
    trainer = BUILDERS[kind](model, tokenizer, data_file, config_kwargs)
    output = trainer.train()
    return {"train_seconds": output.metrics["train_runtime"], "wall_seconds": time.perf_counter() - started,
            "tokens": trained_tokens(kind, trainer.state.log_history, config_kwargs)}


def trained_tokens(kind: str, log_history: list[dict], settings: dict) -> float:
    """Tokens a run trained on, the same count for our side and the plain one: TRL's `num_tokens`; for cpt,
    where every position of a packed row is trained, steps x batch x max_length."""
    if kind == "cpt":
        return settings["max_steps"] * settings["per_device_train_batch_size"] * settings["max_length"]
    return max(float(entry["num_tokens"]) for entry in log_history if "num_tokens" in entry)  # padding not counted


def _cpt(model, tokenizer, data_file: Path, config_kwargs: dict):
    from transformers import Trainer, TrainingArguments, default_data_collator

    block = config_kwargs["max_length"]
    args = TrainingArguments(**{k: v for k, v in config_kwargs.items() if k not in CPT_ONLY_KEYS})
    return Trainer(model=model, args=args, train_dataset=_text_blocks(tokenizer, data_file, block),
                   data_collator=default_data_collator, processing_class=tokenizer)


def _text_blocks(tokenizer, data_file: Path, block: int):
    """Documents joined with EOS and cut into `block`-token rows (labels = inputs, like run_clm.py)."""
    from datasets import Dataset, load_dataset

    texts = load_dataset("json", data_files=str(data_file), split="train")["text"]
    ids = [token for text in texts for token in tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]]
    rows = [ids[i : i + block] for i in range(0, len(ids) - block + 1, block)]
    return Dataset.from_dict({"input_ids": rows, "labels": rows, "attention_mask": [[1] * block for _ in rows]})


def _sft(model, tokenizer, data_file: Path, config_kwargs: dict):
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer

    data = load_dataset("json", data_files=str(data_file), split="train").select_columns(["prompt", "completion"])
    return SFTTrainer(model=model, args=SFTConfig(**config_kwargs), train_dataset=data, processing_class=tokenizer)


def _dpo(model, tokenizer, data_file: Path, config_kwargs: dict):
    from datasets import load_dataset
    from trl import DPOConfig, DPOTrainer

    data = load_dataset("json", data_files=str(data_file), split="train").select_columns(["prompt", "chosen", "rejected"])
    return DPOTrainer(model=model, ref_model=None, args=DPOConfig(**config_kwargs), train_dataset=data,
                      processing_class=tokenizer)


def _grpo(model, tokenizer, data_file: Path, config_kwargs: dict):
    from datasets import load_dataset
    from trl import GRPOConfig, GRPOTrainer

    from cpt.rewards.builtin import exact_match  # the workload's reward, the same function on both sides

    data = load_dataset("json", data_files=str(data_file), split="train").select_columns(["prompt", "answer"])
    return GRPOTrainer(model=model, reward_funcs=[exact_match], args=GRPOConfig(**config_kwargs), train_dataset=data,
                       processing_class=tokenizer)


BUILDERS = {"cpt": _cpt, "sft": _sft, "dpo": _dpo, "grpo": _grpo}
