"""Safe by default: nothing a user hands us is unpickled, and remote code runs only when a recipe says so.

Checked two ways: the source (no torch.load without weights_only=True, no pickle, no unsafe YAML, no
trust_remote_code=True written in), and a real resumed run that records every torch.load and every
from_pretrained call made by us and by the libraries (transformers' resume, lm-eval's model load).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO, tiny_sft_recipe, write_recipe

PACKAGES = ("cpt", "eval", "data_mixing")


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def _source_problems(path: Path) -> list[str]:
    problems = []
    for call, name in _calls(ast.parse(path.read_text(encoding="utf-8"))):
        keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
        where = f"{path.relative_to(REPO)}:{call.lineno}"
        if name == "torch.load" and keywords.get("weights_only") != "True":
            problems.append(f"{where}: torch.load without weights_only=True")
        if name.startswith(("pickle.", "cloudpickle.", "dill.")) or name in ("pickle", "np.load", "numpy.load"):
            problems.append(f"{where}: {name}")
        if name == "yaml.load" and "RecipeLoader" not in keywords.get("Loader", ""):
            problems.append(f"{where}: yaml.load without the safe RecipeLoader")
        if keywords.get("trust_remote_code") == "True":
            problems.append(f"{where}: trust_remote_code=True")
    return problems


def test_the_source_never_unpickles_or_trusts_remote_code_by_itself():
    files = [path for package in PACKAGES for path in (REPO / package).rglob("*.py")]
    assert len(files) > 50
    problems = [problem for path in files for problem in _source_problems(path)]
    assert problems == []


@pytest.mark.slow
def test_a_resumed_run_loads_torch_files_weights_only_and_no_remote_code(tmp_path, toy_dir, monkeypatch):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from cpt.core.checkpoints import CommitCheckpoints
    from cpt.recipe.load import load_recipe
    from cpt.runner.run import run_recipe

    recipe = tiny_sft_recipe(tmp_path, name="r", steps=10, save_steps=5)
    recipe["stages"] = recipe["stages"][:1]
    recipe["eval"]["max_examples"] = 4
    path = write_recipe(tmp_path / "r.yaml", recipe)
    commit = CommitCheckpoints.on_save

    def crash_after_the_first_checkpoint(self, args, state, control, **kwargs):
        commit(self, args, state, control, **kwargs)
        raise KeyboardInterrupt("simulated kill after checkpoint-5")

    monkeypatch.setattr(CommitCheckpoints, "on_save", crash_after_the_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        run_recipe(load_recipe(path), path.read_text())
    monkeypatch.setattr(CommitCheckpoints, "on_save", commit)

    loads, trusts = [], []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: loads.append(kw.get("weights_only")) or real_load(*a, **kw))
    for cls in (AutoConfig, AutoModelForCausalLM, AutoTokenizer):
        real = cls.from_pretrained.__func__

        def recorded(klass, *args, _real=real, **kwargs):
            trusts.append(kwargs.get("trust_remote_code", False))
            return _real(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(recorded))
    assert run_recipe(load_recipe(path), path.read_text()).stage_actions == {"a": "resumed"}
    print(f"torch.load calls: {loads}; trust_remote_code in from_pretrained calls: {trusts}")
    assert len(loads) >= 2 and all(flag is True for flag in loads), loads  # RNG, optimizer, scheduler states
    assert len(trusts) >= 3 and not any(trusts), trusts  # the stage's model and tokenizer, the evaluations
