"""`cpt prepare RECIPE` (cpt/runner/prepare.py) tokenises every cpt domain into the run's token cache, and a
later `cpt run` reaches training without tokenising: it reads those files (both stages, the second with the
tokenizer the first saved) and neither rewrites them nor adds any. Run: python -m pytest tests/cpt/runner/test_prepare.py"""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cpt.cli import main
from tests.helpers import write_recipe

TRAIN = {"max_steps": 2, "per_device_train_batch_size": 4, "max_length": 32, "save_steps": 100,
         "disable_tqdm": True}


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")


def _recipe(tmp_path) -> str:
    from cpt.toy.corpus import domain_texts

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    texts = domain_texts("recipes", "train", 0)[:400]
    for index in range(2):
        pq.write_table(pa.table({"text": texts[index::2], "id": list(range(200))}), corpus / f"part-{index}.parquet")
    web = {"name": "web", "data": {"path": str(corpus)}}
    return str(write_recipe(tmp_path / "r.yaml", {
        "run": {"name": "p", "output_dir": str(tmp_path / "runs"), "seed": 0}, "model": {"name_or_path": "toy"},
        "stages": [
            {"name": "a", "kind": "cpt", "domains": [web, {"name": "code", "data": {"toy": "code"}}], "train": TRAIN},
            {"name": "b", "kind": "cpt", "domains": [web], "train": TRAIN},
        ],
    }))


def _stamps(folder) -> dict:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir()}


@pytest.mark.slow  # about 10 s: two short cpt stages
def test_run_after_prepare_reads_the_cache_without_tokenising(toy_dir, tmp_path, capsys, caplog, cli_state_restored):
    recipe = _recipe(tmp_path)
    assert main(["prepare", recipe]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["a/web", "a/code", "b/web"]
    assert "tokenised in" in lines[0] and "tokenised before" in lines[2]  # stage b's domain is a's
    cache = tmp_path / "runs" / "p" / "cache" / "tokens"
    prepared = _stamps(cache)
    assert len(prepared) == 2 and all(name.endswith(".arrow") for name in prepared)

    caplog.clear()  # the command logs at INFO since it configures logging: keep only the run's records
    with caplog.at_level(logging.INFO, logger="cpt.data.tokens"):
        assert main(["run", recipe, "--no-eval"]) == 0
    assert _stamps(cache) == prepared  # no domain tokenised again, nothing new written
    read = [r.getMessage() for r in caplog.records if "tokens read from" in r.getMessage()]
    assert [m.split(":")[0] for m in read] == ["domain web", "domain code", "domain web"]
    assert not [r for r in caplog.records if "tokenising" in r.getMessage()]
    capsys.readouterr()
    assert main(["prepare", recipe]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all("tokenised before" in line for line in lines), lines
