"""The token cache (cpt/data/tokens.py): a domain is tokenised once into an Arrow file and read back
memory-mapped with the same ids; the file is named by the tokenizer's content (a saved copy finds it, an
added token does not) and by the source's files (a changed file is tokenised again).
Run: python -m pytest tests/cpt/data/test_tokens.py"""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets.table import MemoryMappedTable

from cpt.core.recipe_base import DataSource
from cpt.data.tokens import cache_path, domain_tokens, tokenizer_digest


@pytest.fixture
def tokenizer(toy_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(toy_dir / "model")


def test_the_tokenizer_digest_is_its_content_not_its_folder(tokenizer, tmp_path):
    from transformers import AutoTokenizer

    digest = tokenizer_digest(tokenizer)
    tokenizer(["a few words here"], padding="max_length", max_length=16, truncation=True)  # leaves per-call state
    tokenizer.pad_token = tokenizer.eos_token  # as a stage sets it
    assert tokenizer_digest(tokenizer) == digest
    tokenizer.save_pretrained(tmp_path / "copy")  # what a stage saves with its model
    assert tokenizer_digest(AutoTokenizer.from_pretrained(tmp_path / "copy")) == digest
    tokenizer.add_tokens(["zzqx"])
    assert tokenizer_digest(tokenizer) != digest


def _corpus(folder, texts):
    folder.mkdir(exist_ok=True)
    pq.write_table(pa.table({"text": texts}), folder / "part-0.parquet")
    return DataSource(path=str(folder))


def _stamp(path):
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def test_a_domain_is_tokenised_once_and_mapped_after(tokenizer, tmp_path):
    texts = [f"The cook adds {i} cups of flour and stirs." for i in range(200)]
    source, cache = _corpus(tmp_path / "corpus", texts), tmp_path / "tokens"
    in_memory = domain_tokens(source, tokenizer, "web", None)

    written = domain_tokens(source, tokenizer, "web", cache)
    files = list(cache.iterdir())
    assert files == [cache_path(source, tokenizer, cache)]
    assert written["input_ids"] == in_memory["input_ids"]
    assert all(ids[-1] == tokenizer.eos_token_id for ids in written["input_ids"])
    stamp = _stamp(files[0])

    again = domain_tokens(source, tokenizer, "web", cache)
    assert isinstance(again.data, MemoryMappedTable) and again["input_ids"] == in_memory["input_ids"]
    assert list(cache.iterdir()) == files and _stamp(files[0]) == stamp  # read, not rewritten


def test_a_changed_source_is_tokenised_again(tokenizer, tmp_path):
    source, cache = _corpus(tmp_path / "corpus", ["first version of the text"] * 5), tmp_path / "tokens"
    before = cache_path(source, tokenizer, cache)
    domain_tokens(source, tokenizer, "web", cache)
    _corpus(tmp_path / "corpus", ["second version, longer, of the text"] * 5)
    os.utime(tmp_path / "corpus" / "part-0.parquet", ns=(1, 1))  # a different mtime even on a coarse clock
    after = cache_path(source, tokenizer, cache)
    assert after != before
    fresh = domain_tokens(source, tokenizer, "web", None)["input_ids"]
    assert domain_tokens(source, tokenizer, "web", cache)["input_ids"] == fresh
    assert len(list(cache.iterdir())) == 2
    head = DataSource(path=str(tmp_path / "corpus"), max_examples=2)
    assert cache_path(head, tokenizer, cache) != after  # max_examples is part of the key
