"""A stage's config hash (cpt/runner/lineage.py) covers the content of every file a directory or pattern
source names, and stays what it was for a single data file. Run: python -m pytest tests/cpt/runner/test_lineage.py"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from cpt.recipe.load import load_recipe
from cpt.runner.lineage import stage_hash
from eval.digest import file_digest
from tests.helpers import write_recipe


def _spec(tmp_path, path: str):
    recipe = write_recipe(tmp_path / "r.yaml", {"run": {"name": "h", "output_dir": str(tmp_path / "runs")}, "stages": [
        {"name": "a", "kind": "cpt", "domains": [{"name": "web", "data": {"path": path}}], "train": {"max_steps": 2}}]})
    return load_recipe(recipe, []).stages[0]


def test_the_hash_follows_every_file_of_a_parquet_directory(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for index in range(2):
        pq.write_table(pa.table({"text": [f"file {index}"]}), corpus / f"part-{index}.parquet")
    spec = _spec(tmp_path, str(corpus))
    before = stage_hash(spec, "0" * 16)
    assert stage_hash(_spec(tmp_path, str(corpus / "part-*.parquet")), "0" * 16) != before  # another recipe text
    assert stage_hash(spec, "0" * 16) == before
    pq.write_table(pa.table({"text": ["file 1, changed"]}), corpus / "part-1.parquet")
    assert stage_hash(spec, "0" * 16) != before


def test_a_single_file_is_hashed_as_before(tmp_path):
    from cpt.runner.lineage import _source_digest

    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a"}\n')
    assert _source_digest(_spec(tmp_path, str(data)).domains[0].data) == file_digest(data)
