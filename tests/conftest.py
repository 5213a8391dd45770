"""Shared test setup: offline, and one embedded toy suite built per session in a temp folder."""

from __future__ import annotations

import os
import signal

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n 2` (the quick loop): one thread per worker, in the worker and in the processes its tests
    # start, so two workers share two cores instead of four threads contending for them.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"


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
    """`cpt run` in-process installs stop handlers (cpt/runner/preemption.py); give the test process its
    own handlers and a clean stop flag back afterwards."""
    from cpt.runner import preemption

    numbers = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
    handlers = {number: signal.getsignal(number) for number in numbers}
    yield
    for number, handler in handlers.items():
        signal.signal(number, handler)
    preemption._signalled = False


@pytest.fixture(scope="session")
def pretrained_toy(tmp_path_factory, toy_dir):
    """The toy after a short pretraining on its general domain (the quickstart's), built once per session for
    the slow forgetting tests (adapters and self-rehearsal need some representation to start from)."""
    from filelock import FileLock

    from tests.toy_sequences import run_stages

    # Under `pytest -n 2` the workers share one build (the folder above each worker's own temp folder):
    # the first builds it, the other waits on the lock and reuses it.
    shared = tmp_path_factory.getbasetemp().parent if os.environ.get("PYTEST_XDIST_WORKER") else None
    root = shared / "pretrained_toy" if shared else tmp_path_factory.mktemp("pretrained_toy")
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
