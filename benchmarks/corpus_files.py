"""A deterministic synthetic text corpus as many Parquet files, for benchmarks/corpus_scale.py.

    from corpus_files import write_corpus, write_single_file
    info = write_corpus(Path("/tmp/corpus/parts"), gigabytes=2.1)   # part-00000.parquet ... (reused if there)
    write_single_file(info["files"], Path("/tmp/corpus/all.parquet"))  # the same rows in one file

Documents are 5 to 14 documents of the embedded toy domains (stories and facts, code, recipes, legal
text) joined (about 3 KB each, as in fineweb-edu), drawn with a seed per file, so the toy tokenizer reads text like what it was trained on.
Columns mimic a web corpus (`id`, `url`, `text`) so that reading only `text` is visible. Files are
written uncompressed: their bytes on disk are the text the loaders have to hold or map.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema([("id", pa.int64()), ("url", pa.string()), ("text", pa.string())])
ROW_GROUP = 2000  # documents per row group (~8 MB): what the Parquet readers take at a time


def document_pool(seed: int = 0) -> list[str]:
    """The embedded toy domains' training documents, the material corpus documents are made of."""
    from cpt.toy.corpus import TOY_DOMAINS, domain_texts

    return [text for domain in TOY_DOMAINS for text in domain_texts(domain, "train", seed)]


def write_corpus(folder: Path, gigabytes: float, files: int = 16, seed: int = 0) -> dict:
    """Write `files` Parquet files holding `gigabytes` GB of text in all; reuse them when a corpus with the
    same settings is there (corpus.json). Returns the corpus' description."""
    settings = {"gigabytes": gigabytes, "files": files, "seed": seed, "version": 2}
    described = folder / "corpus.json"
    if described.is_file() and json.loads(described.read_text()).get("settings") == settings:
        info = json.loads(described.read_text())
        if all(Path(f).is_file() for f in info["files"]):
            return info
    folder.mkdir(parents=True, exist_ok=True)
    pool = document_pool(seed)
    per_file = gigabytes * 1e9 / files
    paths, rows, text_bytes = [], 0, 0
    for index in range(files):
        path = folder / f"part-{index:05d}.parquet"
        count, size = _write_file(path, pool, per_file, np.random.default_rng([seed, index]), first_id=rows)
        paths.append(str(path))
        rows, text_bytes = rows + count, text_bytes + size
    info = {"settings": settings, "files": paths, "rows": rows, "text_bytes": text_bytes,
            "file_bytes": sum(Path(p).stat().st_size for p in paths)}
    described.write_text(json.dumps(info, indent=2))
    return info


def _write_file(path: Path, pool: list[str], target_bytes: float, rng: np.random.Generator,
                first_id: int) -> tuple[int, int]:
    count = size = 0
    with pq.ParquetWriter(path, SCHEMA, compression="none") as writer:
        while size < target_bytes:
            texts = ["\n\n".join(pool[j] for j in rng.integers(0, len(pool), rng.integers(5, 15)))
                     for _ in range(ROW_GROUP)]
            ids = list(range(first_id + count, first_id + count + len(texts)))
            urls = [f"https://example.org/doc/{i}" for i in ids]
            writer.write_table(pa.table({"id": ids, "url": urls, "text": texts}, schema=SCHEMA), ROW_GROUP)
            count += len(texts)
            size += sum(len(t.encode()) for t in texts)
    return count, size


def write_single_file(files: list[str], path: Path) -> Path:
    """The rows of `files`, in order, as one Parquet file (row group by row group: bounded memory)."""
    if path.is_file() and path.stat().st_mtime >= max(Path(f).stat().st_mtime for f in files):
        return path
    partial = path.with_suffix(".partial")
    with pq.ParquetWriter(partial, SCHEMA, compression="none") as writer:
        for name in files:
            source = pq.ParquetFile(name)
            for group in range(source.num_row_groups):
                writer.write_table(source.read_row_group(group))
    partial.rename(path)
    return path
