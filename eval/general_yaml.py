"""lm-eval task files of the general-knowledge tasks: a Parquet test split and a YAML beside it.

    write_generate_task("world_capitals", rows, Path("out/world_capitals"), final_dir)   # rows: prompt, answers
    write_choice_task("world_regions", rows, REGIONS, Path("out/world_regions"), final_dir)  # rows: prompt, label

Generated answers are scored like the embedded tasks (greedy, first line, leading space stripped, exact
match) but against a list of accepted answers, ignoring case and punctuation ("Washington, D.C." is
"Washington DC"): what is scored is knowing the capital, not its exact typography.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DATA_FILE = "test.parquet"
MAX_GEN_TOKENS = 16  # the longest capital is 8 tokens; generation stops at the first newline anyway

_HEADER = """\
task: {task}
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {test_file}
test_split: test
doc_to_text: "{{{{prompt}}}}"
"""

_GENERATE = """\
output_type: generate_until
doc_to_target: answers  # a list column: any accepted answer counts
generation_kwargs:
  until: ["\\n"]
  do_sample: false
  max_gen_toks: {max_gen_toks}
filter_list:
  - name: strip
    filter:
      - function: remove_whitespace
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: true
    regexes_to_ignore: ["\\\\s+$"]
metadata:
  version: 1.0
"""

_CHOICE = """\
output_type: multiple_choice
doc_to_choice: {choices}
doc_to_target: label
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def write_generate_task(task: str, rows: list[dict], task_dir: Path, final_dir: Path | None = None) -> Path:
    """A generate_until task from rows {prompt, answers: [str, ...], ...}; return the YAML's path."""
    table = pa.table({
        "country": pa.array([r["country"] for r in rows], pa.string()),
        "prompt": pa.array([r["prompt"] for r in rows], pa.string()),
        "answers": pa.array([list(r["answers"]) for r in rows], pa.list_(pa.string())),
    })
    body = _GENERATE.format(max_gen_toks=MAX_GEN_TOKENS)
    return _write(task, table, body, task_dir, final_dir)


def write_choice_task(
    task: str, rows: list[dict], choices: tuple[str, ...], task_dir: Path, final_dir: Path | None = None
) -> Path:
    """A multiple_choice task from rows {prompt, label: index into choices, ...}; return the YAML's path."""
    table = pa.table({
        "country": pa.array([r["country"] for r in rows], pa.string()),
        "prompt": pa.array([r["prompt"] for r in rows], pa.string()),
        "label": pa.array([int(r["label"]) for r in rows], pa.int64()),
    })
    body = _CHOICE.format(choices=json.dumps(list(choices)))
    return _write(task, table, body, task_dir, final_dir)


def _write(task: str, table: pa.Table, body: str, task_dir: Path, final_dir: Path | None) -> Path:
    # `final_dir`: where the data file will live once a staging folder is renamed into place.
    task_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, task_dir / DATA_FILE)
    data_file = Path(final_dir or task_dir).absolute() / DATA_FILE
    header = _HEADER.format(task=json.dumps(task), test_file=json.dumps(str(data_file)))
    yaml_path = task_dir / f"{task}.yaml"
    yaml_path.write_text(header + body, encoding="utf-8")
    return yaml_path
