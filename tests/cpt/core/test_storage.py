"""A full disk or an unwritable output folder: one clear message, a distinct exit code, and nothing
half-written taken as done by the rerun.

"Disk full" is a real write failure, made with a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) on the
run's process: every write past 2 MB fails inside safetensors or torch.save exactly as it would on a
full disk (EFBIG instead of ENOSPC), with no filesystem to fill or mount.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys

import pytest

from cpt import cli
from cpt.errors import STORAGE_EXIT, USER_ERROR_EXIT
from tests.helpers import REPO, run_cli, tiny_sft_recipe, write_recipe


def _recipe(tmp_path, output_dir):
    recipe = tiny_sft_recipe(output_dir, name="r", steps=10, save_steps=5)
    recipe["stages"] = recipe["stages"][:1]
    recipe.pop("eval")
    return write_recipe(tmp_path / "r.yaml", recipe)


def test_output_dir_under_a_file_is_refused_before_anything_runs(tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    path = _recipe(tmp_path, blocker / "runs")
    assert cli.main(["plan", str(path)]) == USER_ERROR_EXIT
    message = capsys.readouterr().err
    assert f"run.output_dir: {blocker / 'runs'} cannot be created, {blocker} is a file" in message
    assert blocker.read_text() == "x"


def _small_files_only():
    """In the child: writes past 2 MB fail with EFBIG (the signal that would kill it is ignored)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, 2 << 20))


@pytest.mark.slow
def test_a_failed_write_exits_74_and_the_rerun_starts_from_what_is_complete(tmp_path, toy_dir):
    path = _recipe(tmp_path, tmp_path)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    failed = subprocess.run([sys.executable, "-m", "cpt", "run", str(path)], cwd=REPO, env=env, text=True, check=False,
                            capture_output=True, preexec_fn=_small_files_only, timeout=600)
    assert failed.returncode == STORAGE_EXIT, failed.stderr[-2000:]
    message = failed.stderr.strip().splitlines()[-1]
    assert message.startswith(f"cpt: error: writing the run in {tmp_path / 'r'} failed (")
    assert "File too large" in message and "rerun the same command" in message
    assert "Traceback" not in failed.stderr

    stage_dir = tmp_path / "r" / "stages" / "a"
    half_written = stage_dir / "checkpoints" / "checkpoint-5"
    assert half_written.is_dir() and not (half_written / "COMPLETE").exists()
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["stages"]["a"]["status"] == "running"

    rerun = run_cli("run", str(path))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "a: trained" in rerun.stderr  # not "resumed": the half-written checkpoint was discarded
    assert (stage_dir / "model" / "COMPLETE").exists()
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["stages"]["a"]["status"] == "done"
