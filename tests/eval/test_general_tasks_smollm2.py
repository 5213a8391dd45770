"""The general-knowledge tasks through real lm-eval on the real imported SmolLM2-135M-Instruct: they score
what the model knows (near its measured base rates), far from zero and from chance. Slow: it fetches and
imports the model on first use (then cached in $CPT_MODELS_DIR or ~/.cache/cpt/models) and runs it.
Run: pytest tests/eval/test_general_tasks_smollm2.py -q"""

from __future__ import annotations

import pytest

from eval.general_tasks import ensure_general_tasks
from eval.harness import EvalSettings, evaluate_checkpoint
from eval.tasks import TaskCatalog

pytestmark = pytest.mark.slow
LIMIT = 48
# Measured on the first 48 rows with the full-set run's answers (all rows: world_capitals 37.2%, world_regions
# acc 72.4%); greedy, so only batching's float rounding moves it. Chance on world_regions is about 24%.
EXPECTED = {"world_capitals": 0.25, "world_regions": 0.708}


def test_general_tasks_score_near_the_base_rate(tmp_path):
    from cpt.pretrained import ensure_named_model

    model = ensure_named_model("smollm2-135m-instruct")
    catalog = TaskCatalog([ensure_general_tasks(tmp_path / "general")])
    settings = EvalSettings(limit=LIMIT, device="cpu")
    results = evaluate_checkpoint(model, list(EXPECTED), catalog, settings, tmp_path / "eval")
    for task, expected in EXPECTED.items():
        assert results[task].score == pytest.approx(expected, abs=0.1), (task, results[task].score)
    assert results["world_capitals"].metric == "exact_match,strip" and results["world_regions"].metric == "acc,none"
