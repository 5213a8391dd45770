"""Shared test setup: offline, and one embedded toy suite built per session in a temp folder."""

from __future__ import annotations

import json
import os
import signal
from types import SimpleNamespace

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n 2` (the quick loop): one thread per worker, in the worker and in the processes its tests
    # start, so two workers share two cores instead of four threads contending for them.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"


@pytest.fixture(autouse=True)
def _command_logging_removed():
    """A test that calls the `cpt` command in-process configures logging (cpt/core/log_setup.py); the next
    test starts without it, so what a test sees on stderr does not depend on the tests before it."""
    yield
    from cpt.core.log_setup import remove_handlers

    remove_handlers()


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory):
    """The embedded toy model and tasks, built once; CPT_TOY_DIR points every `toy` use here."""
    from cpt.toy import ensure_toy

    root = tmp_path_factory.mktemp("toy")
    ensure_toy(root)
    os.environ["CPT_TOY_DIR"] = str(root)
    return root


@pytest.fixture
def cli_state_restored():
    """`cpt run` in-process installs stop handlers (cpt/core/preemption.py); give the test process its
    own handlers and a clean stop flag back afterwards."""
    from cpt.core import preemption

    numbers = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
    handlers = {number: signal.getsignal(number) for number in numbers}
    yield
    for number, handler in handlers.items():
        signal.signal(number, handler)
    preemption._signalled = False


def _shared_root(tmp_path_factory, name: str):
    """A folder built once per session: under `pytest -n 2` the workers share it (the folder above each
    worker's own temp folder; the first builds it under the lock, the other waits and reuses it)."""
    shared = tmp_path_factory.getbasetemp().parent if os.environ.get("PYTEST_XDIST_WORKER") else None
    return shared / name if shared else tmp_path_factory.mktemp(name)


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory, toy_dir):
    """`cpt run recipes/quickstart.yaml` as a new user runs it, once per session: the quickstart test checks
    it, and the merge guard's forgetting test reruns its last stage with a merge in a copy of its run folder.
    Returns (run folder, the CLI's CompletedProcess-like record)."""
    from filelock import FileLock

    from tests.helpers import REPO, run_cli

    root = _shared_root(tmp_path_factory, "quickstart")
    record = root / "cli.json"
    with FileLock(str(root) + ".lock"):
        if not record.is_file():
            root.mkdir(parents=True, exist_ok=True)
            result = run_cli("run", str(REPO / "recipes" / "quickstart.yaml"), f"run.output_dir={root}", timeout=1200)
            record.write_text(json.dumps({"returncode": result.returncode, "stdout": result.stdout,
                                          "stderr": result.stderr}))
    return root / "quickstart", SimpleNamespace(**json.loads(record.read_text()))


@pytest.fixture(scope="session")
def pretrained_toy(tmp_path_factory, toy_dir):
    """The toy after a short pretraining on its general domain (the quickstart's settings), built once per
    session for the slow forgetting tests (adapters and self-rehearsal need some representation to start
    from). Trained here rather than taken from `quickstart_run`: the quickstart's pretrain (through the CLI)
    differs in float rounding, and the O-LoRA case's bar is sensitive to it (test_forgetting.py)."""
    from filelock import FileLock

    from tests.toy_sequences import run_stages

    root = _shared_root(tmp_path_factory, "pretrained_toy")
    model = root / "stages" / "pre" / "stages" / "pre" / "model"
    with FileLock(str(root) + ".lock"):
        if not (model / "config.json").is_file():
            (root / "stages").mkdir(parents=True, exist_ok=True)
            train = {"max_steps": 300, "per_device_train_batch_size": 16, "max_length": 128, "learning_rate": 6e-3,
                     "lr_scheduler_type": "cosine", "warmup_steps": 15, "save_steps": 300, "disable_tqdm": True}
            stages = run_stages(root / "stages", "pre", "toy", [{"name": "pre", "kind": "cpt", "domains": [
                {"name": "general", "data": {"toy": "general"}}], "train": train}])
            assert stages / "pre" / "model" == model, stages
    return str(model)


@pytest.fixture(scope="session")
def naive_toy_sequence(pretrained_toy, tmp_path_factory):
    """Naive fine-tuning on date_format (stage a) then sorting (stage b) from `pretrained_toy`, once per session:
    (the run folder's parent, to run guarded variants of stage b in; the held-out losses measured)."""
    from tests.toy_sequences import STAGE_A, STAGE_B, run_stages, sequence_losses

    root = tmp_path_factory.mktemp("toy_sequence")
    losses = sequence_losses(run_stages(root, "shared", pretrained_toy, [STAGE_A, STAGE_B]))
    print("naive", {k: round(v, 3) for k, v in losses.items()})  # shown with -s
    return root, losses
