"""RepeatedScorer: lm-eval's score of an in-memory model, the same as the harness gives for the saved folder,
and following the model's weights when they change between calls."""

from __future__ import annotations

import torch

from cpt.toy.tasks import task_validation
from eval.checkpoint import load_for_eval
from eval.harness import EvalSettings, evaluate_checkpoint
from eval.in_memory import RepeatedScorer
from eval.task_files import write_prompt_answer_task
from eval.tasks import TaskCatalog
from tests.memorized_models import start_and_trained

ROWS = 8


def test_scores_match_the_harness_and_follow_the_weights(toy_dir, tmp_path):
    learned, _ = start_and_trained(toy_dir, tmp_path, "counting", "sorting", ROWS, 0, 1e-3)
    write_prompt_answer_task("counting", task_validation("counting", 0)[:ROWS], tmp_path / "tasks" / "counting")
    settings = EvalSettings(batch_size=4, limit=None)
    harness = evaluate_checkpoint(learned, ["counting"], TaskCatalog([tmp_path / "tasks"]), settings, tmp_path / "out")
    model, tokenizer = load_for_eval(learned)
    scorer = RepeatedScorer(model, tokenizer, tmp_path / "tasks", ["counting"], settings)

    first = scorer()
    assert first == {"counting": harness["counting"].score} and first["counting"] >= 0.75
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()  # a model that predicts nothing
    assert scorer() == {"counting": 0.0}
