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
from tests.toy_sequences import STAGE_A, STAGE_B, run_stages, sequence_losses

pytestmark = [pytest.mark.slow, pytest.mark.serial]

REHEARSAL = {"prompts": {"stages": ["a"]}, "rows": 64, "ratio": 0.25, "max_new_tokens": 16}


@pytest.fixture(scope="module")
def measured(pretrained_toy, naive_toy_sequence):
    shared_root, naive = naive_toy_sequence  # stage a is skipped in naive's run folder; b trains with rehearsal
    out = run_stages(shared_root, "shared", pretrained_toy, [STAGE_A, {**STAGE_B, "rehearsal": REHEARSAL}])
    rehearsal = sequence_losses(out)
    print("rehearsal", {k: round(v, 3) for k, v in rehearsal.items()})  # shown with -s
    return {"naive": naive, "rehearsal": rehearsal, "info": json.loads((out / "b" / INFO_FILE).read_text())}


def _forgetting(m: dict) -> float:
    return m["a_after_b"] - m["a_after_a"]


def test_self_synthesized_rehearsal_forgets_less_than_naive_and_still_learns(measured):
    naive, rehearsal = measured["naive"], measured["rehearsal"]
    assert _forgetting(naive) > 1.0, naive
    assert _forgetting(rehearsal) < 0.7 * _forgetting(naive), (rehearsal, naive)
    assert rehearsal["b_after_b"] < 0.75 * rehearsal["b_before_b"], rehearsal
    info = measured["info"]  # the model after task A answers its prompts and stops: most answers are kept
    assert info["prompts"] == 64 and info["rows"] >= 48 and info["source"] == "stages a", info
