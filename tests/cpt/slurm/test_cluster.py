"""`cpt slurm --submit` on a real two-node Slurm (tests/cpt/slurm/conftest.py): the quickstart-sized
recipe runs to completion as chained jobs (one per stage, 2 nodes x 1 process under DeepSpeed ZeRO-2 over
gloo, then an evaluation array and the report), and a stage requeued with `scontrol requeue` mid-training
resumes from its checkpoint and ends with the weights of an uninterrupted run; a stage cancelled with
`scancel` on its whole nodes stops and stays cancelled. Run: python -m pytest tests/cpt/slurm/test_cluster.py"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import REPO, run_cli, write_recipe

# One test Slurm per session: under `pytest -n 2` every test of this file goes to the same worker (--dist loadgroup).
pytestmark = [pytest.mark.slow, pytest.mark.multiprocess, pytest.mark.xdist_group("slurm")]


def _submit(conf: str, recipe: str, *overrides: str) -> dict[str, str]:
    result = run_cli("slurm", recipe, *overrides, "--nodes", "2", "--submit", "--grace", "30",
                     env={"SLURM_CONF": conf})
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(line.split(" ", 1) for line in result.stdout.split("submitted: ", 1)[1].splitlines()[0].split(", "))


ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "GONE")  # GONE: purged from the queue after it ended


def _wait_for(condition, run_dir, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            logs = "\n".join(p.read_text(errors="replace")[-1500:] for p in sorted((run_dir / "slurm" / "logs").glob("*.out")))
            pytest.fail(f"timed out; job logs:\n{logs}")
        time.sleep(2)


def _job_state(conf: str, job_id: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True,
                         env={**os.environ, "SLURM_CONF": conf}, check=False).stdout
    return next((f.split("=", 1)[1] for f in out.split() if f.startswith("JobState=")), "GONE")


def test_quickstart_runs_as_chained_jobs(slurm_cluster, toy_dir, tmp_path):
    shortened = [f"run.output_dir={tmp_path}", "stages.0.train.max_steps=40", "stages.1.train.max_steps=20",
                 "stages.2.train.max_steps=20", "eval.max_examples=10"]
    jobs = _submit(slurm_cluster, str(REPO / "recipes" / "quickstart.yaml"), *shortened)
    assert list(jobs) == ["pretrain", "sft_date_format", "sft_sorting", "eval", "report"]
    run = tmp_path / "quickstart"
    _wait_for(lambda: (run / "report" / "index.html").exists() or _job_state(slurm_cluster, jobs["report"]) in
              ("FAILED", "CANCELLED", "TIMEOUT"), run)
    assert (run / "report" / "index.html").exists()

    manifest = json.loads((run / "manifest.json").read_text())
    assert {n: (s["status"], s["global_step"]) for n, s in manifest["stages"].items()} == {
        "pretrain": ("done", 40), "sft_date_format": ("done", 20), "sft_sorting": ("done", 20)}
    matrix = json.loads((run / "eval" / "matrix.json").read_text())
    assert [row["checkpoint"] for row in matrix["rows"]] == ["base", "pretrain", "sft_date_format", "sft_sorting"]
    for stage in ("pretrain", "sft_date_format", "sft_sorting"):
        log = next((run / "slurm" / "logs").glob(f"{stage}-*.out")).read_text(errors="replace")
        assert "launch: 2 processes, DeepSpeed ZeRO-2" in log and "on n[1-2]" in log, log[-2000:]
    status = run_cli("slurm", "status", str(run), env={"SLURM_CONF": slurm_cluster})
    assert "sft_sorting" in status.stdout and "done (step 20)" in status.stdout


def test_requeued_stage_resumes_and_matches_an_uninterrupted_run(slurm_cluster, toy_dir, tmp_path):
    def recipe(name: str) -> str:
        train = {"max_steps": 60, "per_device_train_batch_size": 8, "max_length": 64, "learning_rate": 1e-3,
                 "save_steps": 20, "logging_steps": 10, "disable_tqdm": True, "bf16": False}
        return str(write_recipe(tmp_path / f"{name}.yaml", {
            "run": {"name": name, "output_dir": str(tmp_path)}, "model": {"name_or_path": "toy"},
            "stages": [{"name": "a", "kind": "sft", "data": {"toy": "date_format"}, "train": train}]}))

    weights = {}
    for name in ("plain", "requeued"):
        job = _submit(slurm_cluster, recipe(name))["a"]
        stage = tmp_path / name / "stages" / "a"
        if name == "requeued":
            _wait_for(lambda stage=stage: (stage / "checkpoints" / "checkpoint-20" / "COMPLETE").exists(), tmp_path / name)
            subprocess.run(["scontrol", "requeue", job], env={**os.environ, "SLURM_CONF": slurm_cluster}, check=True)
        # Read the manifest, the model and the log once the job has ended: the runner writes "done" to the manifest
        # after the model folder, and prints the stage's closing line ("== a: resumed in ...") after that.
        _wait_for(lambda job=job: _job_state(slurm_cluster, job) in ENDED, tmp_path / name)
        manifest = json.loads((tmp_path / name / "manifest.json").read_text())
        assert (manifest["stages"]["a"]["status"], manifest["stages"]["a"]["global_step"]) == ("done", 60)
        weights[name] = load_file(str(stage / "model" / "model.safetensors"))

    log = next((tmp_path / "requeued" / "slurm" / "logs").glob("a-*.out")).read_text(errors="replace")
    assert "(restart 1)" in log and "== a: resumed" in log, log[-3000:]
    # The resumed run restores the DeepSpeed optimizer, scheduler, RNG and data position of its checkpoint.
    for key in weights["plain"]:
        torch.testing.assert_close(weights["requeued"][key], weights["plain"][key], rtol=1e-4, atol=1e-5)


def _job_fields(conf: str, job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True,
                         env={**os.environ, "SLURM_CONF": conf}, check=False).stdout
    return dict(f.split("=", 1) for f in out.split() if "=" in f)


def test_scancel_stops_a_stage_without_requeue(slurm_cluster, toy_dir, tmp_path):
    train = {"max_steps": 100000, "per_device_train_batch_size": 8, "max_length": 64, "save_steps": 10,
             "disable_tqdm": True, "bf16": False}
    recipe = str(write_recipe(tmp_path / "long.yaml", {
        "run": {"name": "long", "output_dir": str(tmp_path)}, "model": {"name_or_path": "toy"},
        "stages": [{"name": "a", "kind": "sft", "data": {"toy": "date_format"}, "train": train}]}))
    job = _submit(slurm_cluster, recipe)["a"]
    stage, run = tmp_path / "long" / "stages" / "a", tmp_path / "long"
    _wait_for(lambda: (stage / "checkpoints" / "checkpoint-10" / "COMPLETE").exists(), run)
    assert _job_fields(slurm_cluster, job)["OverSubscribe"] == "NO"  # --exclusive: whole nodes
    subprocess.run(["scancel", job], env={**os.environ, "SLURM_CONF": slurm_cluster}, check=True)
    _wait_for(lambda: _job_state(slurm_cluster, job) in ("CANCELLED", "GONE"), run, timeout=60)
    time.sleep(20)  # a requeued job would be pending or running again by now (cred_expire=10)
    assert _job_state(slurm_cluster, job) in ("CANCELLED", "GONE")
    assert _job_fields(slurm_cluster, job).get("Restarts", "0") == "0"
    log = next((run / "slurm" / "logs").glob("a-*.out")).read_text(errors="replace")
    assert "requeueing" not in log, log[-2000:]
    node = subprocess.run(["scontrol", "show", "node", "-o", "n1"], capture_output=True, text=True,
                          env={**os.environ, "SLURM_CONF": slurm_cluster}, check=True).stdout
    node_cpus = next(f.split("=", 1)[1] for f in node.split() if f.startswith("CPUTot="))
    assert f", {node_cpus} CPUs per node" in log, log[-2000:]  # the one task per node got all of them
