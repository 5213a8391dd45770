"""Logging as the `cpt` command sets it up: progress on the main process only, errors from every process,
--verbose for debug messages; library records reach the stderr of the moment."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from cpt.cli import main
from cpt.core.log_setup import configure_logging
from tests.helpers import REPO, tiny_sft_recipe, write_recipe

STAGE_LOGGER = "cpt.stages.cpt"  # a library module's logger, as a stage has it

_WARN_FROM_A_STAGE = (
    "import logging; from cpt.core.log_setup import configure_logging; configure_logging(); "
    f"logging.getLogger({STAGE_LOGGER!r}).warning('the warning'); "
    f"logging.getLogger({STAGE_LOGGER!r}).error('the error')"
)


def test_a_warning_met_by_two_processes_is_said_once():
    """Two processes, as a launcher starts them (RANK 0 and 1), each meet the same warning and error."""
    said = []
    for rank in (0, 1):
        env = {**os.environ, "RANK": str(rank), "PYTHONPATH": str(REPO)}
        done = subprocess.run([sys.executable, "-c", _WARN_FROM_A_STAGE], env=env, cwd=REPO, capture_output=True,
                              text=True, check=True, timeout=60)
        said.append(done.stderr)
    assert "".join(said).count("the warning") == 1 and "the warning" in said[0]
    assert said[0].splitlines() == ["the warning", "the error"]
    assert said[1].splitlines() == ["[rank 1] the error"]  # an error is said by every process, with its rank


@pytest.mark.parametrize("verbose, rank, level", [(False, 0, logging.INFO), (True, 0, logging.DEBUG),
                                                  (False, 1, logging.ERROR), (True, 1, logging.ERROR)])
def test_levels_by_rank_and_verbosity(verbose, rank, level, capsys):
    assert configure_logging(verbose, rank) == level
    stage = logging.getLogger(STAGE_LOGGER)
    for name in ("debug", "info", "warning", "error"):
        getattr(stage, name)(f"a {name} message")
    said = [line.split("] ")[-1] for line in capsys.readouterr().err.splitlines()]
    expected = [n for n in ("debug", "info", "warning", "error") if getattr(logging, n.upper()) >= level]
    assert said == [f"a {n} message" for n in expected]


def test_configured_twice_says_each_record_once(capsys):
    configure_logging()
    configure_logging()
    logging.getLogger(STAGE_LOGGER).info("once")
    assert capsys.readouterr().err == "once\n"


@pytest.mark.parametrize("flag", ["--verbose", "-v"])
def test_run_and_plan_accept_verbose_anywhere(tmp_path, toy_dir, capsys, flag):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_sft_recipe(tmp_path / "runs"))
    # `cpt run --verbose` parses, and reaches the recipe (here: refused for its override, exit 2, nothing run)
    assert main(["run", str(recipe), flag, "stages.b.peft.r=-1"]) == 2
    assert "stages.b.peft.r" in capsys.readouterr().err
    assert logging.getLogger("cpt").getEffectiveLevel() == logging.DEBUG
    for words in ([flag, "stages.b.peft.r=4"], ["stages.b.peft.r=4", flag]):  # overrides before or after it
        assert main(["plan", str(recipe), *words]) == 0
        assert "[2] b (sft, LoRA r=4)" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()
