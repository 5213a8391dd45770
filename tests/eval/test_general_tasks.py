"""The general-knowledge tasks (eval/general_tasks.py): real content from `countryinfo`, built deterministically,
loaded and scored by lm-eval itself, and reachable from a recipe by name. No model is run.
Run: pytest tests/eval/test_general_tasks.py -q"""

from __future__ import annotations

import pytest
import yaml

from eval.general_data import CAPITAL_SHOTS, REGIONS
from eval.general_tasks import GENERAL_TASKS, build_general_tasks, ensure_general_tasks


@pytest.fixture(scope="module")
def general_dir(tmp_path_factory):
    return ensure_general_tasks(tmp_path_factory.mktemp("general") / "general-v1")


@pytest.fixture(scope="module")
def tasks(general_dir):
    from lm_eval.tasks import TaskManager, get_task_dict

    manager = TaskManager(include_path=str(general_dir), include_defaults=False)
    return get_task_dict(list(GENERAL_TASKS), manager)


def test_build_is_deterministic(tmp_path):
    first = build_general_tasks(tmp_path / "a")
    second = build_general_tasks(tmp_path / "b")
    assert first == second and first["tasks"]["world_capitals"] > 240 and first["tasks"]["world_regions"] > 240
    for task in GENERAL_TASKS:
        assert (tmp_path / "a" / task / "test.parquet").read_bytes() == (tmp_path / "b" / task / "test.parquet").read_bytes()
        yaml_a = (tmp_path / "a" / task / f"{task}.yaml").read_text().replace(str(tmp_path / "a"), "ROOT")
        yaml_b = (tmp_path / "b" / task / f"{task}.yaml").read_text().replace(str(tmp_path / "b"), "ROOT")
        assert yaml_a == yaml_b


def test_ensure_builds_once_and_reuses(general_dir):
    marker = general_dir / "BUILD_INFO.json"
    stamp = marker.stat().st_mtime_ns
    assert ensure_general_tasks(general_dir) == general_dir and marker.stat().st_mtime_ns == stamp
    spec = yaml.safe_load((general_dir / "world_capitals" / "world_capitals.yaml").read_text())
    assert spec["dataset_kwargs"]["data_files"]["test"] == str(general_dir / "world_capitals" / "test.parquet")


def test_capitals_load_in_lm_eval_with_real_content(tasks):
    task = tasks["world_capitals"]
    docs = {doc["country"]: doc for doc in task.test_docs()}
    assert len(docs) > 240
    assert task.doc_to_target(docs["France"]) == ["Paris"]
    assert task.doc_to_target(docs["Colombia"]) == ["Bogotá", "Bogota"]
    assert task.doc_to_text(docs["Peru"]).endswith("Question: What is the capital of Peru?\nAnswer:")
    assert not {country for country, _ in CAPITAL_SHOTS} & set(docs), "the few-shot countries are not test rows"


@pytest.mark.parametrize(
    "country, prediction, right",
    [("France", "Paris", 1.0), ("France", "paris.", 1.0), ("France", "Lyon", 0.0), ("France", "Paris, France", 0.0),
     ("Colombia", "Bogota", 1.0), ("United States", "Washington, D.C.", 1.0), ("United States", "Washington", 1.0),
     ("Kazakhstan", "Astana", 1.0)],
)
def test_capitals_scoring_accepts_spellings_not_other_answers(tasks, country, prediction, right):
    task = tasks["world_capitals"]
    doc = next(d for d in task.test_docs() if d["country"] == country)
    assert task.process_results(doc, [prediction])["exact_match"] == right


def test_regions_are_multiple_choice_over_five_regions(tasks):
    task = tasks["world_regions"]
    docs = {doc["country"]: doc for doc in task.test_docs()}
    assert task.doc_to_choice(docs["Peru"]) == list(REGIONS)
    assert REGIONS[task.doc_to_target(docs["Peru"])] == "the Americas"
    assert REGIONS[task.doc_to_target(docs["Fiji"])] == "Oceania"
    assert task.doc_to_text(docs["Peru"]).endswith("Question: In which part of the world is Peru?\nAnswer:")


def test_a_recipe_names_them_like_lm_eval_tasks(tmp_path, monkeypatch, general_dir):
    from cpt.errors import UserError
    from cpt.recipe.schema import EvalSpec
    from cpt.runner.evaluation import check_eval_spec, task_catalog

    monkeypatch.setenv("CPT_GENERAL_DIR", str(general_dir))
    spec = EvalSpec(tasks=[{"name": "world_capitals", "general": True}, "world_regions"])
    check_eval_spec(spec)
    assert str(general_dir) in task_catalog(spec, tmp_path).include_paths
    with pytest.raises(UserError, match="did you mean world_capitals"):
        check_eval_spec(EvalSpec(tasks=["world_capital", "world_regions"]))
