"""The stage registry: every kind is one line of `STAGE_SPECS`, its spec states the kind's facts, and no
module outside `cpt/stages` tests a stage's `kind` to decide what to do (that fact belongs in the spec)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from cpt.recipe.schema import Recipe
from cpt.stages.registry import REREADABLE_KINDS, STAGE_KINDS, STAGE_SPECS, kind_of
from cpt.stages.spec import StageSpec

CPT_PACKAGE = Path(__file__).resolve().parents[3] / "cpt"
# The support matrix crosses every kind with every launcher: naming kinds is what it is for.
KIND_TABLES = ("recipe/support_matrix.py",)


def test_each_kind_is_one_spec_class_with_a_runner_module():
    assert len(set(STAGE_KINDS)) == len(STAGE_SPECS) == 4
    for spec_class in STAGE_SPECS:
        assert issubclass(spec_class, StageSpec) and spec_class.data_shapes, spec_class
        assert callable(importlib.import_module(f"cpt.stages.{kind_of(spec_class)}").run)
    assert REREADABLE_KINDS == ("cpt", "sft")


@pytest.mark.parametrize("section, spec_class", [
    ({"kind": "cpt", "domains": [{"name": "d", "data": {"toy": "general"}}], "train": {"max_steps": 2}}, "CPTStageSpec"),
    ({"kind": "sft", "data": {"toy": "sorting"}}, "SFTStageSpec"),
    ({"kind": "dpo", "data": {"path": "p.jsonl"}, "reference": "ref"}, "DPOStageSpec"),
    ({"kind": "grpo", "data": {"toy": "sorting"}}, "GRPOStageSpec"),
])
def test_a_stage_section_becomes_its_kinds_spec_and_states_its_facts(section, spec_class):
    stage = Recipe.model_validate({"run": {"name": "r"}, "stages": [{"name": "s", **section}]}).stages[0]
    assert type(stage).__name__ == spec_class
    assert stage.training_sources() and all(source.describe() for source in stage.training_sources())
    assert stage.reference_model() == section.get("reference")
    assert bool(stage.plan_note()) == (section["kind"] in ("dpo", "grpo"))  # the KL they train with
    assert [d.name for d in stage.text_domains()] == (["d"] if section["kind"] == "cpt" else [])


def _kind_tests(path: Path) -> list[int]:
    """Lines of `x.kind == "sft"` / `kind in ("cpt", ...)` comparisons against a stage kind in one file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        names_kind = any(isinstance(side, ast.Attribute) and side.attr == "kind"
                         or isinstance(side, ast.Name) and side.id == "kind" for side in sides)
        constants = {c.value for side in sides for c in ast.walk(side) if isinstance(c, ast.Constant)}
        if names_kind and constants & set(STAGE_KINDS):
            found.append(node.lineno)
    return found


def test_no_module_outside_the_stages_tests_a_stage_kind():
    outside = [path for path in CPT_PACKAGE.rglob("*.py")
               if path.parent.name != "stages" and str(path.relative_to(CPT_PACKAGE)) not in KIND_TABLES]
    assert outside and not {str(path.relative_to(CPT_PACKAGE)): hits for path in outside
                            if (hits := _kind_tests(path))}


def test_the_check_finds_a_kind_test(tmp_path):
    """The scan above sees the comparisons this registry replaced (so its passing means something)."""
    probe = tmp_path / "probe.py"
    probe.write_text('if stage.kind == "grpo":\n    pass\nshapes = TEXT if kind in ("cpt",) else SFT\nok = kind == "x"\n')
    assert _kind_tests(probe) == [1, 3]
