"""Resolve a recipe's `model:` section to something `from_pretrained` can load.

`toy` is the embedded tiny model (built on first use); a local folder must hold a config.json;
anything else is passed on as a Hugging Face hub name.
"""

from __future__ import annotations

from pathlib import Path

from cpt.errors import UserError
from cpt.recipe.schema import TOY_MODEL, ModelSpec


def resolve_base_model(spec: ModelSpec) -> str:
    """A local folder path or a hub name for the base model."""
    if spec.name_or_path == TOY_MODEL:
        from cpt.toy import ensure_toy

        return str(ensure_toy() / "model")
    path = Path(spec.name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UserError(f"model.name_or_path: {path} has no config.json (expected a Hugging Face model folder)")
        return str(path.resolve())
    if _looks_local(spec.name_or_path):
        raise UserError(f"model.name_or_path: folder {spec.name_or_path} not found")
    return spec.name_or_path


def base_identity(spec: ModelSpec, resolved: str) -> dict:
    """What the base model's hash covers: the recipe section, and for a local folder the size and
    modification time of its config and weight files (a rebuilt or replaced model reruns every stage)."""
    identity = {"spec": spec.model_dump(mode="json", exclude_defaults=True), "resolved": resolved}
    folder = Path(resolved)
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.name == "config.json" or p.suffix == ".safetensors")
        identity["files"] = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return identity


def check_model_spec(spec: ModelSpec) -> None:
    """Preflight of what can be checked without loading: local folders and template files."""
    if spec.name_or_path != TOY_MODEL:
        resolve_base_model(spec)
    tokenizer = spec.tokenizer
    if tokenizer and _looks_local(tokenizer) and not Path(tokenizer).expanduser().is_dir():
        raise UserError(f"model.tokenizer: folder {tokenizer} not found")
    template = spec.chat_template
    if template and template.endswith(".jinja") and not Path(template).is_file():
        raise UserError(f"model.chat_template: file {template} not found")


def _looks_local(name: str) -> bool:
    """A path the user meant as a folder here, not a hub name like `org/model`."""
    return name.startswith(("/", "./", "../", "~"))
