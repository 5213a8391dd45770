"""The one cached-folder builder (eval/cached_folder.py, behind the toy, imported models and the general
tasks): built once, reused while current, rebuilt whole when stale, and a failed build leaves nothing."""

from __future__ import annotations

import json

import pytest

from eval.cached_folder import build_once


def _current(version):
    def is_current(root):
        try:
            return json.loads((root / "BUILD_INFO.json").read_text())["version"] == version
        except (OSError, ValueError):
            return False
    return is_current


def _builder(version, calls, fail=False):
    def build(staging):
        calls.append(staging)
        (staging / "data.txt").write_text(f"v{version}\n")
        if fail:
            raise RuntimeError("killed mid-build")
        (staging / "BUILD_INFO.json").write_text(json.dumps({"version": version}))  # the marker, last
    return build


def _refuse_foreign(root):
    if root.exists() and not (root / "BUILD_INFO.json").exists():
        raise ValueError(f"{root} is not a build")


def test_built_once_then_reused_then_rebuilt_whole_when_stale(tmp_path):
    root, calls = tmp_path / "cache" / "thing", []
    assert build_once(root, _current(1), _builder(1, calls), _refuse_foreign) == root
    assert build_once(root, _current(1), _builder(1, calls), _refuse_foreign) == root
    assert len(calls) == 1 and calls[0] != root  # built beside it, renamed into place
    assert (root / "data.txt").read_text() == "v1\n"
    build_once(root, _current(2), _builder(2, calls), _refuse_foreign)
    assert len(calls) == 2 and (root / "data.txt").read_text() == "v2\n"
    assert sorted(p.name for p in root.parent.iterdir()) == [".thing.lock", "thing"]  # no staging left over


def test_a_failed_build_leaves_the_old_folder_and_no_leftovers(tmp_path):
    root, calls = tmp_path / "thing", []
    build_once(root, _current(1), _builder(1, calls), _refuse_foreign)
    with pytest.raises(RuntimeError, match="killed mid-build"):
        build_once(root, _current(2), _builder(2, calls, fail=True), _refuse_foreign)
    assert (root / "data.txt").read_text() == "v1\n" and _current(1)(root)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".thing.lock", "thing"]


def test_a_folder_that_is_not_a_build_is_refused_and_untouched(tmp_path):
    root, calls = tmp_path / "thing", []
    root.mkdir()
    (root / "mine.txt").write_text("the user's")
    with pytest.raises(ValueError, match="is not a build"):
        build_once(root, _current(1), _builder(1, calls), _refuse_foreign)
    assert calls == [] and [p.name for p in root.iterdir()] == ["mine.txt"]
