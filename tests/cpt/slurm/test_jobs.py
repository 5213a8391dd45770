"""`cpt slurm status RUN_DIR`: each submitted job beside its stage's status, read through the run's manifest
(cpt/slurm/jobs.py); a corrupt manifest is one clear message, as for `cpt run`."""

from __future__ import annotations

import json

import pytest

from cpt.core.layout import RunLayout
from cpt.core.manifest import Manifest
from cpt.errors import UserError
from cpt.slurm.jobs import JOBS_FILE, status_lines


def _submitted(run: RunLayout, *names: str) -> None:
    run.slurm.mkdir(parents=True)
    (run.slurm / JOBS_FILE).write_text(json.dumps(
        [{"name": n, "job_id": str(100 + i), "script": f"{n}.sbatch", "array": False} for i, n in enumerate(names)]))


def test_status_shows_each_stage_as_the_manifest_records_it(tmp_path, monkeypatch):
    monkeypatch.setattr("cpt.slurm.jobs.shutil.which", lambda program: None)  # no Slurm on this machine
    run = RunLayout(tmp_path / "run")
    _submitted(run, "a", "b", "eval")
    manifest = Manifest(run_name="run")
    manifest.mark_done(manifest.record("a", "sft", 0), "stages/a/model", 30, {})
    manifest.mark_running(manifest.record("b", "sft", 1), "h", "stages/a/model", "stages/a/model")
    manifest.save(run.dir)
    lines = status_lines(run.dir)
    rows = [(line.split()[:2], *[part.strip() for part in line.split("(no scontrol here)")[1:]]) for line in lines[1:]]
    assert rows == [(["a", "100"], "done (step 30)"), (["b", "101"], "running (step 0)"), (["eval", "102"], "-")]


def test_status_with_a_corrupt_manifest_is_a_user_error(tmp_path):
    run = RunLayout(tmp_path / "run")
    _submitted(run, "a")
    run.manifest.write_text(json.dumps({"stages": {"a": "not a record"}}))
    with pytest.raises(UserError, match="unreadable manifest"):
        status_lines(run.dir)
