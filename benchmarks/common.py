"""What every benchmark script shares: run a recipe given as a dict, name the machine, write the JSON.

    from common import machine, run_recipe_dict, write_result   # scripts run as `python benchmarks/X.py`
    run_dir, wall_seconds = run_recipe_dict(recipe, workdir / "recipe.json")
    write_result(result, out_dir, "X.json")
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cpus"


def run_recipe_dict(recipe: dict, path: Path) -> tuple[Path, float]:
    """Write `recipe` to `path` (JSON is YAML), run it through the runner; its run dir and wall seconds."""
    from cpt.recipe.load import load_recipe
    from cpt.runner.run import run_recipe

    path.write_text(json.dumps(recipe))
    started = time.perf_counter()
    run_dir = run_recipe(load_recipe(path), path.read_text()).run_dir
    return run_dir, time.perf_counter() - started


def write_result(result: dict, out_dir: Path, name: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {path}")
    return path
