"""Resolve a recipe's `model:` section to something `from_pretrained` can load.

`toy` is the embedded tiny model (built on first use); a registered name such as `smollm2-135m-instruct`
is fetched and imported on first use (cpt/pretrained/); a `.gguf` file is imported into a cached Hugging
Face folder; a local folder must hold a config.json; anything else is passed on as a Hugging Face hub name.
"""

from __future__ import annotations

from pathlib import Path

from cpt.errors import UserError
from cpt.pretrained import ensure_named_model, import_gguf, is_gguf_name, lookup
from cpt.pretrained.cache import read_marker
from cpt.pretrained.gguf_file import check_gguf_header
from cpt.recipe.schema import TOY_MODEL, ModelSpec


def resolve_base_model(spec: ModelSpec) -> str:
    """A local folder path or a hub name for the base model."""
    if spec.name_or_path == TOY_MODEL:
        from cpt.toy import ensure_toy

        return str(ensure_toy() / "model")
    path = Path(spec.name_or_path).expanduser()
    if is_gguf_name(spec.name_or_path):
        return str(_as_user_error("model.name_or_path", import_gguf, path))
    if not path.exists() and lookup(spec.name_or_path):
        return str(_as_user_error("model.name_or_path", ensure_named_model, spec.name_or_path))
    if path.exists():
        if not (path / "config.json").is_file():
            raise UserError(f"model.name_or_path: {path} has no config.json (expected a Hugging Face model folder)")
        return str(path.resolve())
    if _looks_local(spec.name_or_path):
        raise UserError(f"model.name_or_path: folder {spec.name_or_path} not found")
    return spec.name_or_path


def base_identity(spec: ModelSpec, resolved: str) -> dict:
    """What the base model's hash covers: the recipe section, and for a local folder the size and
    modification time of its config and weight files (a rebuilt or replaced model reruns every stage).

    A folder imported from GGUF is identified by the GGUF file's digest instead: re-importing the same file
    (a cleared or moved cache) does not rerun the stages trained on it."""
    spec_dump = spec.model_dump(mode="json", exclude_defaults=True)
    folder = Path(resolved)
    imported = read_marker(folder) if folder.is_dir() else None
    if imported and imported.get("sha256"):
        return {"spec": spec_dump, "gguf_sha256": imported["sha256"], "import_version": imported.get("import_version")}
    identity = {"spec": spec_dump, "resolved": resolved}
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.name == "config.json" or p.suffix == ".safetensors")
        identity["files"] = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return identity


def check_model_spec(spec: ModelSpec) -> None:
    """Preflight of what can be checked without loading: local folders, GGUF files' headers, template files.

    A named model is not fetched here (that is a download and an import): `cpt plan` stays quick and offline.
    """
    name = spec.name_or_path
    if is_gguf_name(name):
        _as_user_error("model.name_or_path", check_gguf_header, Path(name).expanduser())
    elif name != TOY_MODEL and not (lookup(name) and not Path(name).expanduser().exists()):
        resolve_base_model(spec)
    tokenizer = spec.tokenizer
    if tokenizer and _looks_local(tokenizer) and not Path(tokenizer).expanduser().is_dir():
        raise UserError(f"model.tokenizer: folder {tokenizer} not found")
    template = spec.chat_template
    if template and template.endswith(".jinja") and not Path(template).is_file():
        raise UserError(f"model.chat_template: file {template} not found")


def _as_user_error(key: str, function, *args):
    """Call `function`; a UserError it raises is restated with the recipe key it came from."""
    try:
        return function(*args)
    except UserError as exc:
        raise UserError(f"{key}: {exc}") from None


def _looks_local(name: str) -> bool:
    """A path the user meant as a folder here, not a hub name like `org/model`."""
    return name.startswith(("/", "./", "../", "~"))
