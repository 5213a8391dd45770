"""Resolve a recipe's `model:` section to something `from_pretrained` can load.

`toy` is the embedded tiny model (built on first use); a registered name such as `smollm2-135m-instruct`
is fetched and imported on first use (cpt/pretrained/); a `.gguf` file is imported into a cached Hugging
Face folder; a local folder must hold a config.json; anything else is passed on as a Hugging Face hub name.
"""

from __future__ import annotations

import json
from pathlib import Path

from cpt.data.encoding import decode_utf8
from cpt.errors import UserError, as_user_error
from cpt.pretrained import ensure_named_model, import_gguf, is_gguf_name, lookup
from cpt.pretrained.cache import read_marker
from cpt.pretrained.gguf_file import check_gguf_header
from cpt.pretrained.named import named_model_home
from cpt.recipe.schema import TOY_MODEL, ModelSpec
from cpt.toy import ensure_toy, toy_root


def resolve_base_model(spec: ModelSpec) -> str:
    """A local folder path or a hub name for the base model."""
    if spec.name_or_path == TOY_MODEL:
        return str(ensure_toy() / "model")
    path = Path(spec.name_or_path).expanduser()
    if is_gguf_name(spec.name_or_path):
        return str(as_user_error(import_gguf, path, key="model.name_or_path"))
    if not path.exists() and lookup(spec.name_or_path):
        return str(as_user_error(ensure_named_model, spec.name_or_path, key="model.name_or_path"))
    return _local_folder(spec.name_or_path) or _hub_model(spec)


def _local_folder(name: str) -> str | None:
    """The model folder `name` names, resolved; None for a hub name. A folder that is missing or
    holds no config.json is a UserError."""
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UserError(f"model.name_or_path: {path} has no config.json (expected a Hugging Face model folder)")
        return str(path.resolve())
    if _looks_local(name):
        raise UserError(f"model.name_or_path: folder {name} not found")
    return None


def _hub_model(spec: ModelSpec) -> str:
    """A hub name whose config can be had (from the cache, or the hub when online). Checked here, before
    the run directory changes: otherwise the first stage fails loading it with a library traceback."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(spec.name_or_path, trust_remote_code=spec.trust_remote_code)
    except (OSError, ValueError) as exc:
        reason = str(exc).strip().split("\n")[0][:200]
        raise UserError(f"model.name_or_path: {spec.name_or_path} is not a local folder, and no such model "
                        f"could be loaded from the Hugging Face hub or its cache ({reason})") from None
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


def base_folder_if_present(spec: ModelSpec) -> Path | None:
    """The base model's folder when it is already on disk: the toy once built, or a local folder (`cpt plan` and
    preflight build and fetch nothing)."""
    name = spec.name_or_path
    folder = toy_root() / "model" if name == TOY_MODEL else Path(name).expanduser()
    return folder if folder.is_dir() else None


def base_config_if_present(spec: ModelSpec) -> dict | None:
    """The base model's config.json when its folder is already on disk (base_folder_if_present, or a named model
    once imported); None otherwise."""
    folder = base_folder_if_present(spec)
    named = lookup(spec.name_or_path) if folder is None else None
    if named is not None:
        folder = named_model_home(named) / "model"
    if folder is None:
        return None
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent or unreadable: loading the model reports it, naming the folder
        return None
    return config if isinstance(config, dict) else None


def check_model_spec(spec: ModelSpec) -> None:
    """Preflight of what can be checked without loading: local folders, GGUF files' headers, template files.

    A named model is not fetched here (that is a download and an import), nor is a hub model's config
    (`resolve_base_model` does that before a run starts): `cpt plan` stays quick and offline.
    """
    name = spec.name_or_path
    if is_gguf_name(name):
        as_user_error(check_gguf_header, Path(name).expanduser(), key="model.name_or_path")
    elif name != TOY_MODEL and not (lookup(name) and not Path(name).expanduser().exists()):
        _local_folder(name)
    tokenizer = spec.tokenizer
    if tokenizer and _looks_local(tokenizer) and not Path(tokenizer).expanduser().is_dir():
        raise UserError(f"model.tokenizer: folder {tokenizer} not found")
    if spec.chat_template:
        _check_chat_template(spec.chat_template)


def _check_chat_template(template: str) -> None:
    """A `.jinja` file that exists, or template text, that Jinja parses: a broken template would
    otherwise fail only when the first stage formats its rows, after the run directory has changed."""
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # what transformers renders chat templates with

    where = "model.chat_template"
    if template.endswith(".jinja"):
        path = Path(template)
        if not path.is_file():
            raise UserError(f"{where}: file {template} not found")
        where, template = f"{where}: {path}", decode_utf8(path.read_bytes(), f"{where}: {path}")
    try:
        ImmutableSandboxedEnvironment(extensions=["jinja2.ext.loopcontrols"]).parse(template)
    except TemplateSyntaxError as exc:
        raise UserError(f"{where}:{exc.lineno}: not a valid Jinja template ({exc.message})") from None


def _looks_local(name: str) -> bool:
    """A path the user meant as a folder here, not a hub name like `org/model`: it starts like a path,
    or it cannot be a hub name (`models/base/v2` has two slashes) and would fail only when loaded."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if name.startswith(("/", "./", "../", "~")):
        return True
    try:
        validate_repo_id(name)
    except HFValidationError:
        return True
    return False
