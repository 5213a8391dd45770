"""The `cpt` command as a user meets it: plan output, and user errors that exit 2 without a
traceback and without touching an existing run directory."""

from __future__ import annotations

import json

import pytest

from cpt.cli import main
from tests.helpers import run_cli, tiny_sft_recipe, write_recipe


def test_plan_shows_stages_inputs_outputs_and_references(tmp_path, toy_dir):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_sft_recipe(tmp_path / "runs"))
    result = run_cli("plan", str(recipe), "stages.b.peft.r=4")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    run_dir = tmp_path / "runs" / "t"
    assert "[1] a (sft)" in out and "[2] b (sft, LoRA r=4)" in out
    assert f"output:    {run_dir / 'stages' / 'a' / 'model'}" in out
    # lineage: stage b starts from, and is referenced against, stage a's output
    assert out.count(f"input:     {run_dir / 'stages' / 'a' / 'model'}") == 1
    assert out.count(f"reference: {run_dir / 'stages' / 'a' / 'model'}") == 1
    assert "eval (lm-eval, hf backend) after base and each stage: date_format, addition" in out
    assert not run_dir.exists(), "plan must not create the run directory"


def _existing_run(tmp_path):
    """A run directory with content that a failing command must leave byte-identical."""
    run_dir = tmp_path / "runs" / "t"
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps({"sentinel": True}))
    return run_dir


# One case as a real process (exit status, stderr); the malformed-input corpus (tests/malformed) runs
# 129 more in-process, where each costs milliseconds instead of an interpreter start.
@pytest.mark.parametrize(
    "change, expected",
    [(lambda r, d: r["stages"][1].update(data={"path": str(d / "bad.jsonl")}), "bad.jsonl:2: not valid JSON")],
    ids=["bad-json-line"],
)
def test_user_errors_exit_2_without_traceback_and_touch_nothing(tmp_path, toy_dir, change, expected):
    (tmp_path / "bad.jsonl").write_text('{"prompt": "a", "completion": " b"}\nnot json\n')
    run_dir = _existing_run(tmp_path)
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    recipe = tiny_sft_recipe(tmp_path / "runs")
    change(recipe, tmp_path)
    result = run_cli("run", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before


def test_help_and_bad_command():
    helped = run_cli("--help")
    assert helped.returncode == 0 and all(c in helped.stdout for c in ("run", "plan", "toy"))
    result = run_cli("frobnicate")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_toy_command_builds_once_and_reuses(tmp_path):
    out = tmp_path / "toy"
    first = run_cli("toy", "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert (out / "model" / "model.safetensors").is_file() and (out / "BUILD_INFO.json").is_file()
    stamp = (out / "BUILD_INFO.json").stat().st_mtime_ns
    assert run_cli("toy", "--out", str(out)).returncode == 0
    assert (out / "BUILD_INFO.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("order", ["overrides-last", "overrides-first", "overrides-between"])
def test_slurm_takes_overrides_anywhere_on_the_line(tmp_path, order):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_sft_recipe(tmp_path / "runs"))
    elsewhere = tmp_path / "elsewhere"
    first, second = f"run.output_dir={elsewhere}", "stages.b.peft.r=4"
    words = {"overrides-last": ["--nodes", "2", first, second],
             "overrides-first": [first, second, "--nodes", "2"],
             "overrides-between": [first, "--nodes", "2", second]}[order]
    assert main(["slurm", str(recipe), *words]) == 0
    script = (elsewhere / "t" / "slurm" / "00-a.sbatch").read_text()
    assert "#SBATCH --nodes=2" in script.splitlines()
    # both overrides reach the stage command, in the order given
    assert script.index(first) < script.index(second)
    assert not (tmp_path / "runs").exists()


def test_a_stray_word_is_still_refused(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_sft_recipe(tmp_path / "runs"))
    with pytest.raises(SystemExit) as stopped:
        main(["slurm", str(recipe), "--nodes", "2", "stray"])
    assert stopped.value.code == 2 and "unrecognized arguments: stray" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path), "run.name=x"])  # a command without overrides takes none
    assert "unrecognized arguments: run.name=x" in capsys.readouterr().err
