"""SFT on chat `messages` rows and on a `datasets` source, plus a tracker through `report_to`:
the formats a user brings, each through the real trainer."""

from __future__ import annotations

import json

import pytest

from cpt.recipe.load import load_recipe
from cpt.runner.run import run_recipe
from tests.helpers import write_recipe

pytestmark = pytest.mark.slow


def _run_one_stage(tmp_path, data: dict, **train):
    recipe = {
        "run": {"name": "fmt", "output_dir": str(tmp_path / "runs")},
        "stages": [{"name": "s", "kind": "sft", "data": data,
                    "train": {"max_steps": 40, "per_device_train_batch_size": 16, "learning_rate": 3.0e-3,
                              "logging_steps": 5, "save_steps": 40, "disable_tqdm": True, **train}}],
    }
    path = write_recipe(tmp_path / "r.yaml", recipe)
    summary = run_recipe(load_recipe(path), path.read_text())
    stage_dir = summary.run_dir / "stages" / "s"
    losses = [e["loss"] for e in json.loads((stage_dir / "train_log.json").read_text()) if "loss" in e]
    return stage_dir, losses


def _toy_rows(toy_dir, n=400):
    lines = (toy_dir / "tasks" / "date_format" / "train.jsonl").read_text().splitlines()[:n]
    return [json.loads(line) for line in lines]


def test_chat_messages_train_with_the_chat_template(tmp_path, toy_dir):
    chats = [{"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["answer"]}]}
             for r in _toy_rows(toy_dir)]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in chats))
    stage_dir, losses = _run_one_stage(tmp_path, {"path": str(path)}, assistant_only_loss=True)
    assert losses[-1] < 0.5 * losses[0], losses
    assert (stage_dir / "model" / "model.safetensors").is_file()


def test_datasets_source_and_tensorboard_tracker(tmp_path, toy_dir):
    folder = tmp_path / "local_dataset"
    folder.mkdir()
    rows = [{"prompt": r["prompt"], "completion": r["completion"]} for r in _toy_rows(toy_dir)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # `hf:` goes through datasets.load_dataset, which also reads a local dataset folder offline.
    stage_dir, losses = _run_one_stage(tmp_path, {"hf": str(folder), "split": "train"}, report_to="tensorboard")
    assert losses[-1] < losses[0]
    assert list((stage_dir / "checkpoints").rglob("events.out.tfevents.*")), "no TensorBoard event file"
