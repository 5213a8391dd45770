"""Task lookup and fingerprints (eval/tasks.py), and reading lm-eval's output (eval/scores.py)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from eval.errors import EvalInputError
from eval.scores import primary_score, split_by_task
from eval.task_files import write_prompt_answer_task
from eval.tasks import TaskCatalog, builtin_names_file


def test_prompt_answer_task_keeps_answers_as_text(tmp_path):
    rows = [{"prompt": "date 1 May 2000 =", "answer": "2000-05-01"}, {"prompt": "n =", "answer": 7}]
    yaml_path = write_prompt_answer_task("mine", rows, tmp_path / "mine")
    assert pq.read_table(tmp_path / "mine" / "test.parquet").column("answer").to_pylist() == ["2000-05-01", "7"]
    assert "task: \"mine\"" in yaml_path.read_text()


def test_fingerprint_follows_the_data(tmp_path):
    write_prompt_answer_task("mine", [{"prompt": "a =", "answer": "1"}], tmp_path / "mine")
    before = TaskCatalog([tmp_path]).fingerprint("mine")
    assert TaskCatalog([tmp_path]).fingerprint("mine") == before
    write_prompt_answer_task("mine", [{"prompt": "a =", "answer": "2"}], tmp_path / "mine")
    assert TaskCatalog([tmp_path]).fingerprint("mine") != before


def test_builtin_lm_eval_task_names_are_known_offline(tmp_path):
    catalog = TaskCatalog([tmp_path])
    catalog.check(["hellaswag", "arc_easy"])  # lm-eval's own index; nothing is downloaded to check a name
    with pytest.raises(EvalInputError, match="hellaswagg.*did you mean hellaswag"):
        catalog.check(["hellaswagg"])


def test_name_checks_read_the_cached_index_names(tmp_path, monkeypatch):
    """A name check reads lm-eval's task names from the per-version cache file, not the 14k-task index
    (building it is covered above, through the user's cache: 15-25 s a build)."""
    monkeypatch.setenv("CPT_CACHE_DIR", str(tmp_path / "cache"))
    cached = builtin_names_file()
    cached.parent.mkdir(parents=True)
    cached.write_text(json.dumps({"names": ["only_in_the_cache"]}))  # a name lm-eval itself does not have
    catalog = TaskCatalog([tmp_path / "none"])
    catalog.check(["only_in_the_cache"])
    with pytest.raises(EvalInputError, match="did you mean only_in_the_cache"):
        catalog.check(["only_in_the_cach"])


def test_split_by_task_keeps_a_group_and_its_subtasks():
    output = {
        "results": {"grp": {"acc,none": 0.5}, "sub1": {"acc,none": 0.4}, "other": {"acc,none": 0.9}},
        "group_subtasks": {"grp": ["sub1"], "other": []},
        "higher_is_better": {"grp": {"acc": True}, "sub1": {"acc": True}, "other": {"acc": True}},
        "samples": {"sub1": [{"doc_id": 0}], "other": [{"doc_id": 1}]},
        "config": {"limit": 3},
    }
    part, samples = split_by_task(output, "grp")
    assert set(part["results"]) == {"grp", "sub1"} and part["config"] == {"limit": 3}
    assert samples == [{"task": "sub1", "doc_id": 0}]
    assert primary_score(part, "grp") == ("acc,none", 0.5)


def test_primary_score_picks_the_named_metric_or_the_first_declared():
    part = {
        "results": {"t": {"alias": "t", "acc,none": 0.25, "acc_stderr,none": 0.1, "acc_norm,none": 0.75}},
        "higher_is_better": {"t": {"acc": True, "acc_norm": True}},
    }
    assert primary_score(part, "t") == ("acc,none", 0.25)
    assert primary_score(part, "t", "acc_norm") == ("acc_norm,none", 0.75)
    assert primary_score(part, "t", "f1")[1] is None
