"""A real Slurm for the tests that need one: slurmctld and two slurmd (nodes n1, n2) on this machine,
started by slurm/test-cluster-up.sh once per session and stopped, by pid, when the session ends.
Without the Debian packages the tests skip, except under CI=true, where they fail."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.helpers import REPO


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """The SLURM_CONF path under which sbatch, scontrol and squeue reach the test cluster."""
    missing = [p for p in ("slurmctld", "slurmd", "sbatch", "munged") if shutil.which(p) is None]
    if missing:
        message = f"Slurm not installed ({', '.join(missing)} missing): `make test` installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    state = tmp_path_factory.mktemp("slurm")
    up = subprocess.run(["bash", str(REPO / "slurm" / "test-cluster-up.sh"), str(state)],
                        capture_output=True, text=True, timeout=120, check=False)
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    try:
        yield str(state / "slurm.conf")
    finally:
        subprocess.run(["bash", str(REPO / "slurm" / "test-cluster-down.sh"), str(state)], timeout=120, check=False)
