"""Atomic writes and checkpoint completeness: a half-written folder is never taken as finished."""

from __future__ import annotations

import pytest

from cpt.core.atomic import atomic_folder, is_complete, mark_complete, remove_partials
from cpt.core.checkpoints import discard_incomplete, latest_complete_checkpoint, prune_checkpoints


def _checkpoint(root, step, complete=True):
    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"x")
    if complete:
        mark_complete(folder)
    return folder


def test_latest_complete_ignores_unmarked(tmp_path):
    _checkpoint(tmp_path, 10)
    _checkpoint(tmp_path, 20)
    _checkpoint(tmp_path, 30, complete=False)  # a kill during the write of step 30
    assert latest_complete_checkpoint(tmp_path).name == "checkpoint-20"
    discard_incomplete(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-20"]


def test_no_checkpoint_at_all(tmp_path):
    assert latest_complete_checkpoint(tmp_path / "missing") is None
    _checkpoint(tmp_path, 5, complete=False)
    assert latest_complete_checkpoint(tmp_path) is None


def test_prune_keeps_newest_complete(tmp_path):
    for step in (10, 20, 30, 40):
        _checkpoint(tmp_path, step)
    prune_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-30", "checkpoint-40"]


def test_atomic_folder_commits_only_on_success(tmp_path):
    final = tmp_path / "model"
    with pytest.raises(RuntimeError), atomic_folder(final) as tmp:
        (tmp / "weights").write_text("half")
        raise RuntimeError("killed mid-write")
    assert not final.exists()
    remove_partials(tmp_path)
    assert list(tmp_path.iterdir()) == []
    with atomic_folder(final) as tmp:
        (tmp / "weights").write_text("full")
    assert is_complete(final) and (final / "weights").read_text() == "full"


def test_atomic_folder_replaces_old_only_when_new_complete(tmp_path):
    final = tmp_path / "model"
    with atomic_folder(final) as tmp:
        (tmp / "v").write_text("1")
    with pytest.raises(RuntimeError), atomic_folder(final) as tmp:
        (tmp / "v").write_text("2")
        raise RuntimeError
    assert (final / "v").read_text() == "1"


def test_a_replaced_folder_leaves_nothing_beside_it_and_a_killed_swap_is_cleaned(tmp_path, monkeypatch):
    final = tmp_path / "model"
    for version in ("1", "2"):
        with atomic_folder(final) as tmp:
            (tmp / "v").write_text(version)
    assert (final / "v").read_text() == "2" and sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    # Killed after the old folder was moved aside and before its deletion: the next start removes it.
    monkeypatch.setattr("eval.files.shutil.rmtree", lambda *args, **kwargs: None)
    with atomic_folder(final) as tmp:
        (tmp / "v").write_text("3")
    monkeypatch.undo()
    assert any(p.name.startswith(".model.stale-") for p in tmp_path.iterdir())
    remove_partials(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"] and (final / "v").read_text() == "3"
