"""On a 2-task toy sequence (date_format, then sorting), self-synthesized rehearsal of task A's prompts
during task B (the answers written by the model that finished task A) forgets task A measurably less
than naive fine-tuning, and still learns task B.

Measured as in tests/cpt/guards/test_forgetting.py (whose pretrained base, settings and loss measure this
file reuses): the rise of task A's held-out completion loss from after stage A to after stage B.
Run: pytest tests/cpt/stages/test_rehearsal_forgetting.py -s (prints the losses; several minutes).
"""

from __future__ import annotations

import json

import pytest

from cpt.stages.rehearsal import INFO_FILE
from tests.toy_sequences import TRAIN, completion_loss, run_stages

pytestmark = pytest.mark.slow

REHEARSAL = {"prompts": {"stages": ["a"]}, "rows": 64, "ratio": 0.25, "max_new_tokens": 16}


@pytest.fixture(scope="module")
def measured(pretrained_toy, tmp_path_factory):
    root = tmp_path_factory.mktemp("ssr")
    stage_a = {"name": "a", "kind": "sft", "data": {"toy": "date_format"}, "train": TRAIN}
    stage_b = {"name": "b", "kind": "sft", "data": {"toy": "sorting"}, "train": TRAIN}
    results = {}
    for name, stages in {"naive": [stage_a, stage_b], "rehearsal": [stage_a, {**stage_b, "rehearsal": REHEARSAL}]}.items():
        out = run_stages(root, "shared", pretrained_toy, stages)  # one run directory: stage a trains once, then is skipped
        results[name] = {
            "a_after_a": completion_loss(out / "a" / "model", "date_format"),
            "a_after_b": completion_loss(out / "b" / "model", "date_format"),
            "b_before_b": completion_loss(out / "a" / "model", "sorting"),
            "b_after_b": completion_loss(out / "b" / "model", "sorting"),
        }
        print(name, {k: round(v, 3) for k, v in results[name].items()})  # shown with -s
        if name == "rehearsal":
            results["info"] = json.loads((out / "b" / INFO_FILE).read_text())
    return results


def _forgetting(m: dict) -> float:
    return m["a_after_b"] - m["a_after_a"]


def test_self_synthesized_rehearsal_forgets_less_than_naive_and_still_learns(measured):
    naive, rehearsal = measured["naive"], measured["rehearsal"]
    assert _forgetting(naive) > 1.0, naive
    assert _forgetting(rehearsal) < 0.7 * _forgetting(naive), (rehearsal, naive)
    assert rehearsal["b_after_b"] < 0.75 * rehearsal["b_before_b"], rehearsal
    info = measured["info"]  # the model after task A answers its prompts and stops: most answers are kept
    assert info["prompts"] == 64 and info["rows"] >= 48 and info["source"] == "stages a", info
