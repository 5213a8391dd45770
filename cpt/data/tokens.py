"""The token cache: each cpt domain's text tokenised once, into an Arrow file that stages memory-map.

    docs = domain_tokens(DataSource(path="corpus/"), tokenizer, "web", RunLayout(run_dir).token_cache)
    cache_path(source, tokenizer, RunLayout(run_dir).token_cache).is_file()   # tokenised already?

`cpt prepare RECIPE` fills it before any stage runs (cpt/runner/prepare.py), on CPUs, so that a stage's
GPUs do not wait while CPUs tokenise; a stage that finds no file tokenises and writes it itself, so a
resumed or rerun stage reads it too. A file is named by a digest of what decides the token ids:
- the source: each local file's resolved path, size and mtime (as `datasets` keys its own cache), a toy
  file by content, a `datasets` name by name, subset and split (a local dataset folder also by its
  files' stamps), and `max_examples`. A hub dataset updated under the same name is not noticed: delete
  RUN_DIR/cache/tokens to tokenise it again;
- the tokenizer's content (what its fast tokenizer serialises, without the padding and truncation state
  a call leaves behind, and its EOS id), not its folder: a later stage loads the tokenizer its previous
  stage saved, the same content in another folder, and finds the file prepare wrote.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from cpt.core.recipe_base import DataSource
from cpt.data.files import folder_stamps, local_files, stamps
from cpt.data.rows import TEXT_SHAPES, load_rows
from data_mixing.domains import tokenize_texts
from eval.digest import file_digest

logger = logging.getLogger(__name__)

CACHE_VERSION = 1  # raise when tokenize_texts changes what it writes


def domain_tokens(source: DataSource, tokenizer, name: str, cache_dir: Path | None):
    """Domain `name`'s `{"input_ids"}` rows: read from `cache_dir` when tokenised before, else tokenised
    now (into `cache_dir` when given, in memory when None)."""
    from datasets import Dataset

    if cache_dir is None:
        return tokenize_texts(load_rows(source, TEXT_SHAPES), tokenizer, name)
    path = cache_path(source, tokenizer, cache_dir)
    if path.is_file():
        logger.info("domain %s: tokens read from %s", name, path)
        return Dataset.from_file(str(path))
    rows = load_rows(source, TEXT_SHAPES)
    path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("domain %s: tokenising %d rows of %s into %s", name, len(rows), source.describe(), path)
    return tokenize_texts(rows, tokenizer, name, cache_file=path)


def cache_path(source: DataSource, tokenizer, cache_dir: Path) -> Path:
    key = {"version": CACHE_VERSION, "source": source_identity(source), "tokenizer": tokenizer_digest(tokenizer)}
    return cache_dir / f"{_sha256(json.dumps(key, sort_keys=True))[:24]}.arrow"


def source_identity(source: DataSource) -> dict:
    """What identifies the rows a source gives, without reading them."""
    identity = {"split": source.split, "max_examples": source.max_examples}
    if source.hf is not None:
        identity.update(hf=source.hf, subset=source.subset, files=folder_stamps(source.hf))  # a local folder's files
    elif source.toy is not None:  # small files, rebuilt in a new folder per test session: by content
        identity.update(toy=source.toy, content=file_digest(local_files(source)[0]))
    else:
        identity["files"] = stamps(local_files(source))
    return identity


def tokenizer_digest(tokenizer) -> str:
    """A digest of what decides the ids `tokenizer(texts)` gives, the same for a copy saved elsewhere."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        for per_call in ("padding", "truncation"):  # set by a call with padding=/truncation=, not the vocabulary
            state.pop(per_call, None)
        text = json.dumps(state, sort_keys=True)
    else:
        text = type(tokenizer).__name__ + json.dumps(sorted(tokenizer.get_vocab().items()))
    return _sha256(f"{tokenizer.eos_token_id}\0{text}")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
