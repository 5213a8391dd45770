"""A hand-made run for the report tests: checkpoints base, stage_a, stage_b; tasks a, b, general g; a missing score.

Expected numbers, worked out by hand (learned_threshold 0.9, so b at 85% is flagged never learned):
final average accuracy (60 + 85) / 2 = 72.5%; BWT a: 60 - 90 = -30.0; FWT n/a (b's score before its
stage is missing); forgetting a 30.0, b 0.0; general change g: 65 - 80 = -15.0.
"""

from __future__ import annotations

from eval.metrics import compute_metrics, metrics_to_json
from eval.report import ReportData, StageCurves

MATRIX = {
    "tasks": ["a", "b", "g"],
    "rows": [
        {"checkpoint": "base", "scores": {"a": 0.05, "b": 0.10, "g": 0.80}},
        {"checkpoint": "stage_a", "scores": {"a": 0.90, "b": None, "g": 0.70}},
        {"checkpoint": "stage_b", "scores": {"a": 0.60, "b": 0.85, "g": 0.65}},
    ],
}
TASK_STAGE = {"a": "stage_a", "b": "stage_b"}


def make_report_data() -> ReportData:
    metrics = metrics_to_json(compute_metrics(MATRIX, TASK_STAGE, general={"g"}, learned_threshold=0.9))
    steps = [10, 20, 30, 40]
    stages = [
        StageCurves(
            "mix_cpt",
            "cpt",
            {
                "loss": [(s, 3.0 / s**0.3) for s in steps],
                "weight/general": [(s, 0.7 - 0.05 * i) for i, s in enumerate(steps)],
                "weight/code": [(s, 0.3 + 0.05 * i) for i, s in enumerate(steps)],
            },
        ),
        StageCurves(
            "stage_a",
            "sft",
            {
                "loss": [(10, 2.5), (20, 1.2), (30, None), (40, 0.6)],
                "eval_loss": [(20, 1.5), (40, 0.9)],
            },
        ),
        StageCurves(
            "stage_b",
            "grpo",
            {
                "reward": [(s, 0.1 * i) for i, s in enumerate(steps)],
                "kl": [(s, 0.01 * i) for i, s in enumerate(steps)],
            },
        ),
        StageCurves("dpo_nolog", "dpo", {}),
    ]
    notes = ["base model: toy", "recipe: recipes/test.yaml"]
    return ReportData("test_run", MATRIX, {**metrics, "task_stage": TASK_STAGE}, ["g"], stages, notes)
