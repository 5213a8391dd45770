"""General-knowledge lm-eval tasks built from offline package data: what continual training costs a real
model's existing knowledge.

    world_capitals   "What is the capital of Peru?" -> "Lima": ~246 countries, greedy generation, exact match
                     against the accepted spellings, ignoring case and punctuation
    world_regions    "In which part of the world is Peru?" -> Africa / the Americas / Asia / Europe / Oceania:
                     ~248 countries, multiple choice by log-likelihood (acc; chance is about 24%)

    python -m eval.general_tasks [DIR]     # build (or reuse) the tasks and print a summary
    ensure_general_tasks()                 # -> $CPT_GENERAL_DIR or ~/.cache/cpt/general-v1 (the lm-eval include path)

In a recipe: `eval: {tasks: [{name: world_capitals, general: true}, ...]}`. Both are few-shot completions
scored on the bare answer: keep `eval.apply_chat_template` off (the default) for them. The folder is built
once, under a file lock, in a staging folder renamed into place; its BUILD_INFO.json marker (written last)
records the version of this builder and of `countryinfo`, and a mismatch rebuilds it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from eval.cached_folder import build_once
from eval.errors import EvalInputError

VERSION = 1  # bump when the tasks' rows or YAML change: existing builds are rebuilt
MARKER = "BUILD_INFO.json"
GENERAL_TASKS = ("world_capitals", "world_regions")


def general_root() -> Path:
    """Where the general tasks live: $CPT_GENERAL_DIR if set, else ~/.cache/cpt/general-v1."""
    configured = os.environ.get("CPT_GENERAL_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "cpt" / f"general-v{VERSION}"


def build_general_tasks(target: Path, final_root: Path | None = None) -> dict:
    """Write every general task into `target` (data files named as they will be under `final_root`); return
    the build info. Deterministic: the same package data gives the same files."""
    from eval.general_data import REGIONS, capital_rows, region_rows
    from eval.general_yaml import write_choice_task, write_generate_task

    final_root = Path(final_root or target)
    capitals, regions = capital_rows(), region_rows()
    write_generate_task("world_capitals", capitals, target / "world_capitals", final_root / "world_capitals")
    write_choice_task("world_regions", regions, REGIONS, target / "world_regions", final_root / "world_regions")
    info = {"version": VERSION, "countryinfo": _countryinfo_version(),
            "tasks": {"world_capitals": len(capitals), "world_regions": len(regions)}}
    (target / MARKER).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return info


def ensure_general_tasks(root: Path | None = None) -> Path:
    """The folder of general task YAMLs (default `general_root()`), built first unless complete and current."""
    root = Path(root).absolute() if root is not None else general_root().absolute()
    return build_once(root, _is_current, lambda staging: build_general_tasks(staging, root), _check_replaceable)


def _is_current(root: Path) -> bool:
    try:
        info = json.loads((root / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("version") == VERSION and info.get("countryinfo") == _countryinfo_version()


def _countryinfo_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("countryinfo")
    except PackageNotFoundError:
        raise EvalInputError(
            "the general-knowledge tasks need the `countryinfo` package: pip install countryinfo"
        ) from None


def _check_replaceable(root: Path) -> None:
    # Only an earlier build of these tasks is replaced; anything else there is the user's.
    allowed = {*GENERAL_TASKS, MARKER}
    if root.exists() and (not root.is_dir() or not {p.name for p in root.iterdir()} <= allowed):
        raise EvalInputError(f"{root} exists and is not a build of the general tasks: remove it or set CPT_GENERAL_DIR")


def main(argv: list[str]) -> None:
    root = ensure_general_tasks(Path(argv[0]) if argv else None)
    info = json.loads((root / MARKER).read_text(encoding="utf-8"))
    print(f"general tasks ready in {root} (countryinfo {info['countryinfo']})")
    for task, count in info["tasks"].items():
        print(f"  {task}: {count} rows, {root / task / (task + '.yaml')}")
    from eval.general_data import capital_rows, region_rows

    print("\nexample prompt (world_capitals):\n" + capital_rows()[0]["prompt"] + " " + capital_rows()[0]["answers"][0])
    print("\nexample prompt (world_regions):\n" + region_rows()[0]["prompt"])


if __name__ == "__main__":
    main(sys.argv[1:])
