"""The toy's lm-eval task YAMLs parse, point at their test files, and load in lm-eval itself."""

import yaml

from cpt.toy import TOY_TASKS
from cpt.toy.tasks import CAPITALS_TEST_SIZE


def test_yaml_fields_and_test_file(toy_dir):
    for task in TOY_TASKS:
        spec = yaml.safe_load((toy_dir / "tasks" / task / f"{task}.yaml").read_text())
        assert spec["task"] == task and spec["output_type"] == "generate_until"
        assert spec["dataset_path"] == "parquet"
        assert spec["dataset_kwargs"]["data_files"]["test"] == str(toy_dir / "tasks" / task / "test.parquet")
        assert spec["generation_kwargs"]["until"] == ["\n"]
        assert spec["metric_list"][0]["metric"] == "exact_match"


def test_lm_eval_loads_the_tasks(toy_dir):
    from lm_eval.tasks import TaskManager, get_task_dict

    manager = TaskManager(include_path=str(toy_dir / "tasks"), include_defaults=False)
    tasks = get_task_dict(["addition", "capitals"], manager)
    docs = list(tasks["capitals"].test_docs())
    assert len(docs) == CAPITALS_TEST_SIZE
    assert tasks["capitals"].doc_to_text(docs[0]) == docs[0]["prompt"]
    assert tasks["capitals"].doc_to_target(docs[0]) == docs[0]["answer"]


def test_date_answers_stay_strings(toy_dir):
    """JSON data made "2007-07-24" a timestamp rendered as "2007-07-24 00:00:00": no prediction matched."""
    import json

    from lm_eval.tasks import TaskManager, get_task_dict

    manager = TaskManager(include_path=str(toy_dir / "tasks"), include_defaults=False)
    task = get_task_dict(["date_format"], manager)["date_format"]
    first_row = json.loads((toy_dir / "tasks" / "date_format" / "test.jsonl").open().readline())
    assert task.doc_to_target(next(iter(task.test_docs()))) == first_row["answer"]
