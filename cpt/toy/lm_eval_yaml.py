"""lm-eval (0.4.x) task definitions for the toy tasks: greedy generation, first line, exact match.

The task name inside each YAML is the toy task name itself, so
`TaskManager(include_path=str(root / "tasks"), include_defaults=False)` then `tasks=list(TOY_TASKS)` works.
`python -m cpt.toy DIR` builds them into DIR/tasks/<task>/<task>.yaml.
"""

import json
from pathlib import Path

MAX_GEN_TOKENS = 32

# JSON scalars are valid YAML and keep "\n" readable.
_TEMPLATE = """\
task: {task}
dataset_path: json
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


def render_task_yaml(task: str, test_file: Path | str) -> str:
    """The lm-eval YAML text of `task`, reading its test split from `test_file` (made absolute)."""
    return _TEMPLATE.format(
        task=json.dumps(task),
        test_file=json.dumps(str(Path(test_file).absolute())),
        max_gen_toks=MAX_GEN_TOKENS,
    )


def write_task_yaml(task: str, test_file: Path, path: Path) -> None:
    """Write the lm-eval YAML of `task` to `path`."""
    path.write_text(render_task_yaml(task, test_file))
