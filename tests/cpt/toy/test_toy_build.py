"""Toy builds: layout, determinism, and ensure_toy's build-once behaviour. Run: pytest tests/cpt/toy -q"""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cpt.errors import UserError
from cpt.toy import TOY_DOMAINS, TOY_TASKS, build_toy, ensure_toy, toy_root


def _digests(root: Path) -> dict[str, str]:
    digests = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes().replace(str(root).encode(), b"<ROOT>")  # YAMLs name their own root
        digests[str(path.relative_to(root))] = hashlib.sha256(data).hexdigest()
    return digests


def test_layout_and_build_info(toy_dir):
    for name in (
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ):
        assert (toy_dir / "model" / name).is_file(), name
    for task in TOY_TASKS:
        for name in ("train.jsonl", "test.jsonl", "test.parquet", f"{task}.yaml"):
            assert (toy_dir / "tasks" / task / name).is_file()
    for domain in TOY_DOMAINS:
        for split in ("train", "validation"):
            assert (toy_dir / "domains" / domain / f"{split}.jsonl").stat().st_size > 0
    info = json.loads((toy_dir / "BUILD_INFO.json").read_text())
    assert info["version"] == 3 and info["seed"] == 0
    assert info["tasks"] == list(TOY_TASKS) and info["domains"] == list(TOY_DOMAINS)
    assert 500_000 <= info["model_params"] <= 5_000_000


def test_same_seed_builds_are_byte_identical(toy_dir, tmp_path):
    assert _digests(build_toy(tmp_path / "again")) == _digests(toy_dir)


def test_toy_root_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CPT_TOY_DIR", str(tmp_path / "elsewhere"))
    assert toy_root() == tmp_path / "elsewhere"
    monkeypatch.delenv("CPT_TOY_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert toy_root() == tmp_path / ".cache" / "cpt" / "toy-v3"


@pytest.mark.multiprocess
def test_ensure_toy_concurrent_then_reused(tmp_path):
    root = tmp_path / "shared"
    call = f"from cpt.toy import ensure_toy; print(ensure_toy({str(root)!r}))"
    procs = [
        subprocess.Popen([sys.executable, "-c", call], stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120)[0].strip() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    assert outputs == [str(root)] * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".shared.lock", "shared"]  # no staging left over
    marker_mtime = (root / "BUILD_INFO.json").stat().st_mtime_ns
    assert ensure_toy(root) == root
    assert (root / "BUILD_INFO.json").stat().st_mtime_ns == marker_mtime


def test_ensure_toy_replaces_a_half_built_dir(toy_dir, tmp_path):
    root = tmp_path / "half"
    (root / "tasks").mkdir(parents=True)
    assert ensure_toy(root) == root
    assert (root / "BUILD_INFO.json").is_file()


def test_ensure_toy_refuses_foreign_dir_and_other_seed(toy_dir, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a toy build"):
        ensure_toy(foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(UserError, match="seed 0, not 1"):
        ensure_toy(toy_dir, seed=1)
