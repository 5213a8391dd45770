"""lm-eval task definitions for {prompt, answer} data: greedy generation, first line, exact match.

    write_prompt_answer_task("date_format", rows, Path("tasks/date_format"))
    # -> tasks/date_format/test.parquet and tasks/date_format/date_format.yaml (task name = "date_format")

The data goes to Parquet with every column a string, not JSON Lines: lm-eval reads `dataset_path: json`
through pyarrow, which turns an answer such as "2007-07-24" into a timestamp and then renders it as
"2007-07-24 00:00:00", so no prediction could ever match it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DATA_FILE = "test.parquet"
MAX_GEN_TOKENS = 32

# JSON scalars are valid YAML and keep "\n" readable.
_TEMPLATE = """\
task: {task}
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {test_file}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  do_sample: false
  max_gen_toks: {max_gen_toks}
# Completions start with a space (prompts never end with one), so strip before matching.
filter_list:
  - name: strip
    filter:
      - function: remove_whitespace
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def render_task_yaml(task: str, data_file: Path | str, max_gen_toks: int = MAX_GEN_TOKENS) -> str:
    """The lm-eval YAML text of `task`, reading its test split from `data_file` (made absolute)."""
    return _TEMPLATE.format(
        task=json.dumps(task), test_file=json.dumps(str(Path(data_file).absolute())), max_gen_toks=max_gen_toks
    )


def write_prompt_answer_task(
    task: str, rows: list[dict], task_dir: Path, data_dir: Path | None = None, max_gen_toks: int = MAX_GEN_TOKENS
) -> Path:
    """Write `rows` ({prompt, answer, ...}) and the YAML of `task` into `task_dir`; return the YAML's path.

    `data_dir` is where the data file will finally live, when `task_dir` is a staging folder renamed later.
    """
    task_dir.mkdir(parents=True, exist_ok=True)
    columns = sorted({key for row in rows for key in row} | {"prompt", "answer"})
    table = pa.table({c: pa.array([_text(row.get(c)) for row in rows], pa.string()) for c in columns})
    pq.write_table(table, task_dir / DATA_FILE)
    yaml_path = task_dir / f"{task}.yaml"
    yaml_path.write_text(render_task_yaml(task, (data_dir or task_dir) / DATA_FILE, max_gen_toks))
    return yaml_path


def _text(value) -> str | None:
    return None if value is None else str(value)
