"""Submit a run's sbatch scripts as chained jobs, and show where they stand.

    cpt slurm RECIPE --nodes 2 --submit      # each stage after the previous one (afterok), then eval, report
    cpt slurm status RUN_DIR                 # the jobs, their Slurm state and restarts, each stage's status

The job ids are kept in RUN_DIR/slurm/jobs.json. Commands run as argument lists, never through a shell.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from cpt.core.layout import RunLayout
from cpt.core.manifest import Manifest
from cpt.errors import UserError
from cpt.slurm.scripts import JobScript
from eval.files import atomic_write_json

JOBS_FILE = "jobs.json"


def submit(jobs: list[JobScript], run_dir: Path) -> dict[str, str]:
    """sbatch each script, each depending (afterok) on the jobs it names; return name -> job id."""
    _require("sbatch")
    ids: dict[str, str] = {}
    for job in jobs:
        command = ["sbatch", "--parsable"]
        if job.depends_on:
            command.append("--dependency=afterok:" + ":".join(ids[name] for name in job.depends_on))
        result = subprocess.run([*command, str(job.path)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise UserError(f"sbatch {job.path} failed: {result.stderr.strip()} (submitted so far: {ids or 'none'})")
        ids[job.name] = result.stdout.strip().split(";")[0]  # "<id>[;cluster]"
        atomic_write_json(RunLayout(run_dir).slurm / JOBS_FILE, [
            {"name": j.name, "job_id": ids[j.name], "script": str(j.path), "array": j.array}
            for j in jobs if j.name in ids])
    return ids


def status_lines(run_dir: Path) -> list[str]:
    """One line per job: name, id, Slurm state (with restarts), and the stage's status in the manifest."""
    jobs_file = RunLayout(run_dir).slurm / JOBS_FILE
    if not jobs_file.is_file():
        raise UserError(f"{jobs_file} not found: submit the run first with `cpt slurm RECIPE --submit`")
    jobs = json.loads(jobs_file.read_text(encoding="utf-8"))
    manifest = Manifest.load(run_dir)
    stages = manifest.stages if manifest else {}
    lines = [f"{'job':<20} {'id':<10} {'slurm state':<28} stage status"]
    for job in jobs:
        state = _slurm_state(job["job_id"]) if shutil.which("scontrol") else "(no scontrol here)"
        stage = stages.get(job["name"])
        progress = f"{stage.status} (step {stage.global_step})" if stage else "-"
        lines.append(f"{job['name']:<20} {job['job_id']:<10} {state:<28} {progress}")
    return lines


def _slurm_state(job_id: str) -> str:
    result = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return "finished (no longer listed)"
    states = []
    for line in result.stdout.splitlines():  # one line per array task
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        restarts = fields.get("Restarts", "0")
        states.append(fields.get("JobState", "?") + (f" restarts={restarts}" if restarts != "0" else ""))
    return ", ".join(sorted(set(states)))


def _require(program: str) -> None:
    if shutil.which(program) is None:
        raise UserError(f"{program} not found: submit from a Slurm login node (the scripts are written; "
                        "run `sbatch` on them there)")
