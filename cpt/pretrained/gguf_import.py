"""Import a GGUF model file into a plain Hugging Face folder (safetensors, config, tokenizer, chat template).

    cpt import-model path/to/model.gguf [--out DIR]
    import_gguf(Path("model.gguf"))     # -> ~/.cache/cpt/models/gguf/<stem>-<sha256[:12]>/, reused once built

transformers reads GGUF (through the `gguf` package) and dequantises it, but then refuses to
`save_pretrained` the model ("quantized with gguf ... not serializable"). So the import builds a fresh
model from a copy of the config without `quantization_config`, loads the dequantised state dict into it
and saves that. The folder is keyed by the file's sha256 and written to a staging folder renamed into
place with its marker written last: an interrupted import leaves nothing that looks complete.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path

from cpt.errors import UserError
from cpt.pretrained.cache import check_replaceable, models_root, read_marker, write_marker
from cpt.pretrained.gguf_file import check_gguf_header, gguf_digest, read_gguf_metadata
from eval.cached_folder import build_once

logger = logging.getLogger(__name__)

IMPORT_VERSION = 1  # bump when the import procedure changes what it writes: old imports are rebuilt
# Saved in float32: the dequantised GGUF weights are exact in fp32, so the imported model's logits equal the
# GGUF-loaded model's bit for bit; bf16 would round them (max logit change 0.15, 1 greedy answer in 40
# changed, measured on SmolLM2-135M Q4_1). Training loads fp32 weights anyway; the cost is disk (517 vs 260 MB).
SAVE_DTYPE = "float32"


def default_import_dir(path: Path, digest: str) -> Path:
    """Where the import of the GGUF file `path` with content `digest` is cached."""
    return models_root() / "gguf" / f"{path.stem}-{digest[:12]}"


def import_gguf(path: Path | str, out: Path | str | None = None, replace: bool = False) -> Path:
    """The Hugging Face folder imported from GGUF file `path`, built on first use and reused after.

    `out` defaults to the cache (`default_import_dir`). A folder at `out` that holds the import of another
    file is refused unless `replace` (used for cache entries the pipeline owns). Raises UserError for a
    missing, non-GGUF, truncated or unsupported file.
    """
    path = Path(path).expanduser().absolute()
    check_gguf_header(path)
    digest = gguf_digest(path)
    final = Path(out).expanduser().absolute() if out is not None else default_import_dir(path, digest)

    def refuse(folder: Path) -> None:
        _refuse_other_import(folder, replace)
        check_replaceable(folder)

    def build(staging: Path) -> None:
        metadata = read_gguf_metadata(path)
        logger.info("importing %s (%.0f MB, %s) into %s", path.name, metadata["size"] / 1e6,
                    metadata["architecture"], final)
        started = time.time()
        parameters = convert_gguf(path, staging)
        write_marker(staging, {  # last: a folder without its marker is never taken as complete
            "import_version": IMPORT_VERSION, "source": str(path), "sha256": digest, "dtype": SAVE_DTYPE,
            "parameters": parameters, "seconds": round(time.time() - started, 1), **metadata,
            "transformers": _transformers_version(),
        })
        logger.info("imported in %.0fs: %s", time.time() - started, final)

    return build_once(final, lambda folder: _is_import_of(folder, digest), build, refuse)


def convert_gguf(path: Path, out_dir: Path) -> int:
    """Load GGUF file `path` with transformers, save it as a plain HF folder in `out_dir`; return the parameter count."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = getattr(torch, SAVE_DTYPE)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype)
    except (ValueError, NotImplementedError, KeyError, OSError) as exc:
        raise UserError(f"transformers could not load GGUF file {path}: {exc}") from None
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # what makes save_pretrained refuse a GGUF-loaded model
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = copy.deepcopy(loaded.generation_config)
    model.save_pretrained(out_dir)
    if tokenizer.model_max_length > 10**9:  # "no limit" from the GGUF: state the context the model was trained for
        tokenizer.model_max_length = getattr(config, "max_position_embeddings", tokenizer.model_max_length)
    tokenizer.save_pretrained(out_dir)
    return sum(p.numel() for p in model.parameters())


def _is_import_of(folder: Path, digest: str) -> bool:
    info = read_marker(folder)
    return bool(info) and info.get("sha256") == digest and info.get("import_version") == IMPORT_VERSION


def _refuse_other_import(final: Path, replace: bool) -> None:
    info = read_marker(final)
    if info and not replace and info.get("import_version") == IMPORT_VERSION:
        raise UserError(
            f"{final} already holds the import of {info.get('source')} (another file): "
            "choose another --out folder, or delete it first"
        )


def _transformers_version() -> str:
    import transformers

    return transformers.__version__
