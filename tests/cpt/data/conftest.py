"""Every data test's `datasets` Arrow cache (Parquet converted, streamed heads) goes under its own temp folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")
    return tmp_path / "hf-datasets"
