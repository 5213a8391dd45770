"""The dpo stage on the toy model: it raises the chosen-over-rejected log-probability margin on held-out
pairs, its reference is the starting model by default, and a bad reference fails before anything runs.
Run: pytest tests/cpt/stages/test_dpo.py"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cpt.recipe.load import load_recipe
from cpt.runner.run import run_recipe
from tests.helpers import run_cli, write_recipe


def _recipe(tmp_path, **stage):
    train = {"max_steps": 30, "per_device_train_batch_size": 16, "learning_rate": 5.0e-4, "max_length": 64,
             "logging_steps": 10, "disable_tqdm": True, "loss_type": ["sigmoid"], "beta": 0.1}
    return {"run": {"name": "dpo", "output_dir": str(tmp_path)},
            "stages": [{"name": "d", "kind": "dpo", "data": {"toy": "date_format"}, "train": train, **stage}]}


@torch.inference_mode()
def _mean_margin(model_dir, rows) -> float:
    """Mean over pairs of log p(chosen | prompt) - log p(rejected | prompt), summed over completion tokens."""
    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir)

    def logprob(prompt, completion):
        prompt_ids = tokenizer(prompt)["input_ids"]
        ids = torch.tensor([tokenizer(prompt + completion)["input_ids"]])
        logits = model(ids).logits.log_softmax(-1)[0, :-1]
        targets = ids[0, 1:]
        picked = logits.gather(1, targets[:, None])[:, 0]
        return picked[len(prompt_ids) - 1 :].sum().item()

    return sum(logprob(r["prompt"], r["chosen"]) - logprob(r["prompt"], r["rejected"]) for r in rows) / len(rows)


@pytest.mark.slow
def test_dpo_raises_the_margin_on_held_out_pairs(tmp_path, toy_dir):
    path = write_recipe(tmp_path / "r.yaml", _recipe(tmp_path))
    summary = run_recipe(load_recipe(path), path.read_text())
    held_out = [json.loads(line) for line in (toy_dir / "tasks" / "date_format" / "test.jsonl").open()][:50]
    before, after = _mean_margin(toy_dir / "model", held_out), _mean_margin(summary.run_dir / "stages/d/model", held_out)
    assert after > before + 1.0, (before, after)
    manifest = json.loads((summary.run_dir / "manifest.json").read_text())
    assert manifest["stages"]["d"]["reference"] == str(toy_dir / "model")
    log = json.loads((summary.run_dir / "stages" / "d" / "train_log.json").read_text())
    margins = [e["rewards/margins"] for e in log if "rewards/margins" in e]
    assert margins and margins[-1] > margins[0]


@pytest.mark.slow
def test_dpo_with_lora_raises_the_margin_and_saves_a_merged_model(tmp_path, toy_dir):
    recipe = _recipe(tmp_path, peft={"r": 8, "alpha": 16})
    recipe["stages"][0]["train"]["learning_rate"] = 3.0e-3  # LoRA trains few weights: a larger step
    path = write_recipe(tmp_path / "r.yaml", recipe)
    model_dir = run_recipe(load_recipe(path), path.read_text()).run_dir / "stages/d/model"
    held_out = [json.loads(line) for line in (toy_dir / "tasks" / "date_format" / "test.jsonl").open()][:50]
    before, after = _mean_margin(toy_dir / "model", held_out), _mean_margin(model_dir, held_out)
    assert after > before + 0.5, (before, after)
    assert (model_dir / "model.safetensors").exists() and not (model_dir / "adapter_config.json").exists()


def test_missing_reference_fails_before_the_run(tmp_path, toy_dir):
    result = run_cli("plan", str(write_recipe(tmp_path / "r.yaml", _recipe(tmp_path, reference=str(tmp_path / "no")))))
    assert result.returncode == 2
    assert f"stage d: reference {tmp_path / 'no'} is not a model folder" in result.stderr

