"""The runner on real TRL trainers and the toy model: learning, lineage, skip-if-done, rerun from
the first changed stage. (Resume after a kill is in test_resume.py.)"""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from cpt.recipe.load import load_recipe
from cpt.runner.run import run_recipe
from tests.helpers import tiny_sft_recipe, write_recipe

pytestmark = pytest.mark.slow


def _run(tmp_path, recipe_dict, overrides=()):
    path = write_recipe(tmp_path / "r.yaml", recipe_dict)
    return run_recipe(load_recipe(path, list(overrides)), path.read_text())


def _weights(model_dir):
    return load_file(model_dir / "model.safetensors")


def test_sft_lowers_loss_and_raises_accuracy(tmp_path, toy_dir):
    recipe = tiny_sft_recipe(tmp_path, steps=300, learning_rate=3.0e-3, per_device_train_batch_size=32,
                             lr_scheduler_type="cosine", save_steps=100, logging_steps=25)
    recipe["stages"] = recipe["stages"][:1]
    summary = _run(tmp_path, recipe)
    log = json.loads((summary.run_dir / "stages" / "a" / "train_log.json").read_text())
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert losses[-1] < 0.5 * losses[0], losses
    base, after = dict(summary.matrix)["base"], dict(summary.matrix)["a"]
    assert after["date_format"] >= base["date_format"] + 0.5, summary.matrix


def test_lineage_skip_and_rerun_from_changed_stage(tmp_path, toy_dir):
    recipe = tiny_sft_recipe(tmp_path, steps=10)
    recipe["stages"][1]["train"]["learning_rate"] = 0.0  # b changes nothing: its output must equal a's
    recipe["eval"]["base"] = False
    first = _run(tmp_path, recipe)
    assert first.stage_actions == {"a": "trained", "b": "trained"}
    run_dir = first.run_dir
    a_out, b_out = run_dir / "stages" / "a" / "model", run_dir / "stages" / "b" / "model"
    a_weights, b_weights, base_weights = _weights(a_out), _weights(b_out), _weights(toy_dir / "model")
    name = "model.layers.0.self_attn.q_proj.weight"
    assert (b_weights[name] == a_weights[name]).all(), "stage b did not start from stage a's weights"
    assert not (a_weights[name] == base_weights[name]).all()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["b"]["input"] == str(a_out)
    assert manifest["stages"]["b"]["reference"] == str(a_out)
    assert [manifest["stages"][s]["status"] for s in "ab"] == ["done", "done"]

    mtime = (b_out / "model.safetensors").stat().st_mtime_ns
    second = _run(tmp_path, recipe)
    assert second.stage_actions == {"a": "skipped", "b": "skipped"}
    assert (b_out / "model.safetensors").stat().st_mtime_ns == mtime
    assert second.matrix == first.matrix

    third = _run(tmp_path, recipe, ["stages.b.train.max_steps=5"])
    assert third.stage_actions == {"a": "skipped", "b": "trained"}
    assert json.loads((run_dir / "manifest.json").read_text())["stages"]["b"]["global_step"] == 5


def test_lora_stage_exports_merged_plain_model(tmp_path, toy_dir):
    recipe = tiny_sft_recipe(tmp_path, steps=10)
    recipe["stages"] = recipe["stages"][:1]
    recipe["stages"][0]["peft"] = {"r": 4, "alpha": 8}
    summary = _run(tmp_path, recipe)
    model_dir = summary.run_dir / "stages" / "a" / "model"
    weights = _weights(model_dir)
    assert not any("lora" in key for key in weights), "the exported model should have LoRA merged in"
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not (weights[name] == _weights(toy_dir / "model")[name]).all(), "LoRA update was not merged"
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(model_dir)  # a plain Hugging Face folder
