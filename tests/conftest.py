"""Shared test setup: offline, and one embedded toy suite built per session in a temp folder."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory):
    """The embedded toy model and tasks, built once; CPT_TOY_DIR points every `toy` use here."""
    from cpt.toy import ensure_toy

    root = tmp_path_factory.mktemp("toy")
    ensure_toy(root)
    os.environ["CPT_TOY_DIR"] = str(root)
    return root
