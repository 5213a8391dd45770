"""`cpt eval RUN_DIR` and `cpt report RUN_DIR` on a finished tiny run: cached reruns do no forward passes,
stage and task selection, and bad input (exit 2, nothing overwritten). Run: pytest tests/cpt/runner/test_eval_run.py"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil

import pytest

from cpt.cli import main
from cpt.recipe.load import load_recipe
from cpt.runner.run import run_recipe
from tests.eval.test_harness import ForwardCounter
from tests.helpers import run_cli, tiny_sft_recipe, write_recipe

# One xdist worker takes the module's slow tests (make test: --dist loadgroup): one shared run, not one per worker.
pytestmark = pytest.mark.xdist_group("eval_run")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, toy_dir):
    """A 2-stage SFT run (10 steps each) with its inline evaluation done."""
    out = tmp_path_factory.mktemp("evalrun")
    recipe = tiny_sft_recipe(out, steps=10)
    recipe["eval"]["tasks"].append({"name": "capitals", "general": True})
    path = write_recipe(out / "r.yaml", recipe)
    return run_recipe(load_recipe(path), path.read_text()).run_dir


def _snapshot(run_dir):
    return {p: p.read_bytes() for p in (run_dir / "eval").glob("*.json")}


@pytest.mark.slow
def test_inline_run_wrote_results_matrix_and_report(finished_run):
    for checkpoint in ("base", "stages/a", "stages/b"):
        for task in ("date_format", "addition", "capitals"):
            stored = json.loads((finished_run / checkpoint / "eval" / f"{task}.json").read_text())
            assert task in stored["results"] and stored["cpt_cache"]["key"]
    matrix = json.loads((finished_run / "eval" / "matrix.json").read_text())
    assert [r["checkpoint"] for r in matrix["rows"]] == ["base", "a", "b"]
    assert matrix["tasks"] == ["date_format", "addition", "capitals"]
    timings = json.loads((finished_run / "eval" / "timings.json").read_text())
    assert set(timings["eval_seconds"]) == {"base", "a", "b"} and set(timings["train_seconds"]) == {"a", "b"}
    html = (finished_run / "report" / "index.html").read_text()
    markdown = (finished_run / "report" / "report.md").read_text()
    for text in ("date_format", "addition", "capitals (general)", 'src="stage_a.png"', 'src="stage_b.png"'):
        assert text in html, text
    for text in ("date_format", "addition", "capitals", "stage_a.png", "stage_b.png"):
        assert text in markdown, text


@pytest.mark.slow
def test_second_eval_does_no_forward_passes(finished_run, capsys):
    before = _snapshot(finished_run)
    with ForwardCounter() as counter:
        assert main(["eval", str(finished_run)]) == 0
    assert counter.calls == 0
    printed = capsys.readouterr().out
    assert re.search(r"eval b: date_format [\d.]+%, addition [\d.]+%, capitals [\d.]+%", printed)
    assert json.loads(_snapshot(finished_run)[finished_run / "eval" / "matrix.json"]) == json.loads(
        before[finished_run / "eval" / "matrix.json"]
    )


@pytest.mark.slow
def test_eval_one_stage_on_a_new_task_adds_a_column(finished_run, capsys):
    with ForwardCounter() as counter:
        assert main(["eval", str(finished_run), "--stage", "b", "--tasks", "date_format", "sorting"]) == 0
    assert counter.calls > 0  # sorting was never evaluated
    matrix = json.loads((finished_run / "eval" / "matrix.json").read_text())
    assert matrix["tasks"] == ["date_format", "sorting"]
    scores = {r["checkpoint"]: r["scores"] for r in matrix["rows"]}
    assert scores["b"]["sorting"] is not None and scores["a"]["sorting"] is None  # only b was asked for
    assert (finished_run / "stages" / "b" / "eval" / "sorting.json").is_file()
    assert not (finished_run / "stages" / "a" / "eval" / "sorting.json").exists()
    assert main(["eval", str(finished_run)]) == 0  # back to the recipe's tasks
    assert json.loads((finished_run / "eval" / "matrix.json").read_text())["tasks"][-1] == "capitals"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "no_such_task_xyz"], "unknown eval task 'no_such_task_xyz'"),
        (["--stage", "c"], "--stage c: no such stage"),
        (["--tasks", "bad name"], "--tasks bad name: cannot name a folder inside the run directory"),
    ],
)
def test_bad_eval_request_exits_2_and_keeps_results(finished_run, capsys, args, message):
    before = _snapshot(finished_run)
    assert main(["eval", str(finished_run), *args]) == 2
    assert message in capsys.readouterr().err
    assert _snapshot(finished_run) == before


@pytest.mark.slow
def test_half_written_checkpoint_exits_2(finished_run, tmp_path, capsys):
    copy = shutil.copytree(finished_run, tmp_path / "copy")
    (copy / "stages" / "b" / "model" / "COMPLETE").unlink()
    before = _snapshot(copy)
    assert main(["eval", str(copy)]) == 2
    assert "stages/b/model is missing or half-written" in capsys.readouterr().err
    assert _snapshot(copy) == before


def test_not_a_run_dir_exits_2(tmp_path):
    for command in ("eval", "report"):
        result = run_cli(command, str(tmp_path))
        assert result.returncode == 2, result.stderr
        assert "not a run directory (no manifest.json)" in result.stderr
        assert "Traceback" not in result.stderr


def test_unknown_task_in_recipe_fails_before_the_run_dir_exists(tmp_path, toy_dir):
    recipe = tiny_sft_recipe(tmp_path)
    recipe["eval"]["tasks"] = ["date_format", "hellaswagg"]
    result = run_cli("run", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert result.returncode == 2
    assert "unknown eval task 'hellaswagg' (did you mean hellaswag" in result.stderr
    assert not (tmp_path / "t").exists()


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_is_refused_by_plan(tmp_path, toy_dir):
    recipe = tiny_sft_recipe(tmp_path)
    result = run_cli("plan", str(write_recipe(tmp_path / "r.yaml", recipe)), "eval.backend=vllm")
    assert result.returncode == 2
    assert "eval.backend is 'vllm' but vLLM is not installed" in result.stderr
    assert "pip install 'cpt-pipeline[vllm]'" in result.stderr


def test_plan_names_the_eval_backend_and_report(tmp_path, toy_dir):
    result = run_cli("plan", str(write_recipe(tmp_path / "r.yaml", tiny_sft_recipe(tmp_path))))
    assert result.returncode == 0, result.stderr
    assert "eval (lm-eval, hf backend) after base and each stage: date_format, addition" in result.stdout
    assert f"report in {tmp_path / 't' / 'report'}" in result.stdout
