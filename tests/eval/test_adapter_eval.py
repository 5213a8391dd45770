"""Adapter checkpoints are evaluated as the trained model, never silently as their base.

A LoRA SFT stage keeps its last Trainer checkpoint as a PEFT adapter folder and exports a merged model.
Scored by a log-likelihood task (perplexity of the date_format answers), the adapter folder must beat
the base and match the merged export. Run: pytest tests/eval/test_adapter_eval.py"""

from __future__ import annotations

import pytest

from cpt.recipe.load import load_recipe
from cpt.runner.run import run_recipe
from eval.checkpoint import is_adapter
from eval.harness import EvalSettings, evaluate_checkpoint
from eval.tasks import TaskCatalog
from tests.helpers import write_recipe

pytestmark = pytest.mark.slow

PERPLEXITY_TASK = """\
task: date_format_ppl
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: loglikelihood
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: perplexity
    aggregation: perplexity
    higher_is_better: false
"""


def _lora_run(tmp_path):
    settings = {"max_steps": 60, "per_device_train_batch_size": 32, "learning_rate": 1.0e-2, "save_steps": 60,
                "logging_steps": 20, "max_length": 64, "disable_tqdm": True}
    recipe = {
        "run": {"name": "lora", "output_dir": str(tmp_path)},
        "stages": [{"name": "a", "kind": "sft", "data": {"toy": "date_format"}, "peft": {"r": 16, "alpha": 32},
                    "keep_checkpoints": 1, "train": settings}],
    }
    path = write_recipe(tmp_path / "r.yaml", recipe)
    return run_recipe(load_recipe(path), path.read_text()).run_dir


def test_adapter_scores_as_the_trained_model(tmp_path, toy_dir):
    run_dir = _lora_run(tmp_path)
    adapter = run_dir / "stages" / "a" / "checkpoints" / "checkpoint-60"
    merged = run_dir / "stages" / "a" / "model"
    assert is_adapter(adapter) and not is_adapter(merged)
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    data = toy_dir / "tasks" / "date_format" / "test.parquet"
    (tasks / "date_format_ppl.yaml").write_text(PERPLEXITY_TASK.format(data=data))
    catalog, settings = TaskCatalog([tasks]), EvalSettings(limit=50, batch_size=16, device="cpu")

    def perplexity(folder, name):
        return evaluate_checkpoint(folder, ["date_format_ppl"], catalog, settings, tmp_path / name)[
            "date_format_ppl"
        ].score

    base, trained, exported = perplexity(toy_dir / "model", "b"), perplexity(adapter, "a"), perplexity(merged, "m")
    assert trained < 0.5 * base, (trained, base)
    assert trained == pytest.approx(exported, rel=1e-3)
