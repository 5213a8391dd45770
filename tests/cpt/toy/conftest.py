"""Fixtures for the toy tests: one toy built per session into a pytest temp dir (never the user's cache)."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory) -> Path:
    """A complete toy built with seed 0, shared by the read-only tests."""
    from cpt.toy import build_toy

    return build_toy(tmp_path_factory.mktemp("toy") / "toy")
