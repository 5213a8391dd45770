"""Resuming a cpt stage's mixing state: a checkpoint's state restores the stream and the learner; one this
version cannot continue (an older learner format, a changed batch size) is a user error naming the file,
and leaves the checkpoint as it was. Run: pytest tests/cpt/stages/test_cpt_mixing_resume.py"""

from __future__ import annotations

import json

import pytest

from cpt.errors import UserError
from cpt.stages.cpt import restore_mixing
from data_mixing.callback import MIXTURE_STATE, MixingCallback
from data_mixing.learners import make_learner
from data_mixing.stream import MixtureStream
from tests.data_mixing.fakes import two_domains


def _callback(sequences_per_step: int = 4) -> MixingCallback:
    domains = two_domains(16)
    stream = MixtureStream(domains, {"a": 0.5, "b": 0.5}, max_length=16, seed=0)
    learner = make_learner("odm", ["a", "b"], {"a": 1, "b": 1})
    return MixingCallback(stream, learner, None, update_every=5, sequences_per_step=sequences_per_step)


def _state_at_step_10(callback: MixingCallback) -> dict:
    """The state a checkpoint at step 10 holds, after the stream has given out those steps' sequences."""
    stream = iter(callback.stream)
    while callback.stream.position < 10 * callback.sequences_per_step:
        next(stream)
    return callback.state_dict(10)


def _checkpoint(tmp_path, state: dict):
    folder = tmp_path / "checkpoint-10"
    folder.mkdir()
    (folder / MIXTURE_STATE).write_text(json.dumps(state))
    return folder


def test_a_saved_state_restores_the_learner(tmp_path):
    saved = _callback()
    saved.learner.weights = saved.learner.weights * 0 + [0.2, 0.8]
    checkpoint = _checkpoint(tmp_path, _state_at_step_10(saved))
    restored = _callback()
    assert restore_mixing(restored, checkpoint)
    assert restored.learner.weights.tolist() == [0.2, 0.8]
    assert not restore_mixing(_callback(), tmp_path)  # a folder without a state: nothing to restore


@pytest.mark.parametrize("change, expected", [
    ("old format", "learner state has format 1, this version reads"),
    ("batch size", "sequences per step, this run takes 8"),
])
def test_a_state_this_run_cannot_continue_is_a_user_error_naming_the_file(tmp_path, change, expected):
    state = _state_at_step_10(_callback())
    if change == "old format":
        del state["learner"]["format"]
    checkpoint = _checkpoint(tmp_path, state)
    before = (checkpoint / MIXTURE_STATE).read_text()
    with pytest.raises(UserError, match=expected) as error:
        restore_mixing(_callback(sequences_per_step=8 if change == "batch size" else 4), checkpoint)
    assert str(error.value).startswith(f"{checkpoint / MIXTURE_STATE}: ")
    assert (checkpoint / MIXTURE_STATE).read_text() == before
