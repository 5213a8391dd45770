"""Which lm-eval tasks exist, and what identifies a task's version for the result cache.

    catalog = TaskCatalog([toy_root / "tasks", Path("my_tasks")])   # task YAML folders
    catalog.check(["date_format", "hellaswag"])    # EvalInputError naming any task lm-eval does not know
    catalog.fingerprint("date_format")             # changes when the task's config or local data changes
    catalog.chance("parity", limit=100)            # share of its most frequent answer (eval/chance.py), or None

lm-eval's own task index (14k tasks) takes 15-25 s to build on a 2-core CPU, so it is read only when
a name is not found in the given folders, and checking a name (`cpt plan`, a misspelt task) reads
the index's names from a JSON file cached per lm-eval version under ~/.cache/cpt/lm-eval-tasks/ (or
$CPT_CACHE_DIR) instead; only evaluating a built-in task builds the index itself.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

from eval.chance import task_chance
from eval.digest import file_digest
from eval.errors import EvalInputError


class TaskCatalog:
    """The tasks in `include_paths` (folders of lm-eval YAMLs) plus, when needed, lm-eval's built-in ones."""

    def __init__(self, include_paths: list[Path | str] = ()):
        self.include_paths = [str(Path(p)) for p in include_paths]
        self._manager = None
        self._with_defaults = False

    def manager(self, names: list[str] = ()):
        """An lm-eval TaskManager that knows every name in `names` if any can."""
        from lm_eval.tasks import TaskManager

        if self._manager is None:
            self._manager = TaskManager(include_path=self.include_paths or None, include_defaults=False)
        if any(n not in self._manager.all_tasks for n in names) and not self._with_defaults:
            self._manager = TaskManager(include_path=self.include_paths or None, include_defaults=True)
            self._with_defaults = True
        return self._manager

    def check(self, names: list[str]) -> None:
        """Raise EvalInputError naming each task lm-eval does not know, with the nearest known names."""
        known = list(self.manager().all_tasks)  # the include paths only: fast
        if all(n in known for n in names):
            return
        known += builtin_task_names()
        unknown = [n for n in names if n not in known]
        if not unknown:
            return
        hints = []
        for name in unknown:
            near = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hints.append(f"'{name}'" + (f" (did you mean {', '.join(near)}?)" if near else ""))
        raise EvalInputError(
            f"unknown eval task {'; '.join(hints)}: not an embedded task, not in "
            f"{', '.join(self.include_paths) or 'any include_path'}, and not one of lm-eval's tasks"
        )

    def fingerprint(self, name: str) -> str:
        """A digest of the task's resolved config, the lm-eval version, and the content of its local data files."""
        import lm_eval

        entry = self.manager([name]).task_index[name]
        config = getattr(entry, "cfg", None) or {}
        payload = {
            "lm_eval": lm_eval.__version__,
            "config": config,
            "data": {str(p): file_digest(p) for p in _local_data_files(config)},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def chance(self, name: str, limit: int | None = None) -> float | None:
        """The task's chance level over the first `limit` test rows; None where its rows are not local."""
        entry = self.manager([name]).task_index.get(name)
        return task_chance(getattr(entry, "cfg", None) or {}, limit)


def builtin_task_names() -> list[str]:
    """Every task, group and tag name lm-eval ships, read from a per-version JSON cache (built on a miss)."""
    path = builtin_names_file()
    try:
        return json.loads(path.read_text())["names"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no cache yet, or a damaged one: build the index once
    from lm_eval.tasks import TaskManager

    names = sorted(TaskManager(include_defaults=True).all_tasks)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")  # concurrent checks each rename their own
        partial.write_text(json.dumps({"names": names}))
        os.replace(partial, path)
    except OSError:
        pass  # a read-only home still checks, only slower
    return names


def builtin_names_file() -> Path:
    """Where `builtin_task_names` keeps the names of the installed lm-eval version."""
    return _cache_root() / "lm-eval-tasks" / f"names-{_lm_eval_version()}.json"


def _cache_root() -> Path:
    configured = os.environ.get("CPT_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "cpt"


def _lm_eval_version() -> str:
    try:
        return metadata.version("lm_eval")
    except metadata.PackageNotFoundError:
        return "none"


def _local_data_files(config: dict) -> list[Path]:
    files = (config.get("dataset_kwargs") or {}).get("data_files") or {}
    values = files.values() if isinstance(files, dict) else [files]
    flat = [v for value in values for v in (value if isinstance(value, list) else [value])]
    return sorted(Path(v) for v in flat if isinstance(v, str) and Path(v).is_file())

