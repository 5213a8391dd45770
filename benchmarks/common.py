"""What every benchmark script shares: run a recipe given as a dict, the `--mode` flag, the rows of the
summary table, and writing the JSON.

    from common import add_common_args, row, run_recipe_dict, write_result  # scripts run as `python benchmarks/X.py`
    run_dir, wall_seconds = run_recipe_dict(recipe, workdir / "recipe.json")
    write_result({"benchmark": "X", "machine": machine(), "mode": args.mode,
                  "table": [row("training tokens/s", ours, plain, "plain TRL", "tokens/s")]}, args.out, "X.json")

Every result JSON carries a `table`: the rows `python -m benchmarks` gathers into docs/benchmarks.md
(benchmarks/report.py). A row's `ratio` is always "ours relative to the reference, above 1 is better
for us": ours/reference for rates, reference/ours for times and memory (`lower_is_better`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from hardware import machine  # noqa: F401  (re-exported: every script names its machine)

MODES = ("quick", "full")


def add_common_args(parser: argparse.ArgumentParser, out_default: Path = Path("benchmarks/results")) -> None:
    """`--mode quick|full` (quick: sized for a 2-core CPU machine in minutes; full: larger, meant for GPUs)
    and `--out`, the folder of the JSON results."""
    parser.add_argument("--mode", choices=MODES, default="quick", help="quick: CI-sized machine; full: a GPU")
    parser.add_argument("--out", type=Path, default=out_default)


def parse_with_mode(parser: argparse.ArgumentParser, mode_defaults: dict[str, dict]) -> argparse.Namespace:
    """Parse the command line with the chosen mode's defaults (`{"quick": {...}, "full": {...}}`); a flag given
    explicitly still wins."""
    parser.set_defaults(**mode_defaults[parser.parse_known_args()[0].mode])
    return parser.parse_args()


def row(measure: str, ours: float | None, reference: float | None = None, reference_name: str = "",
        unit: str = "", lower_is_better: bool = False, note: str = "", difference: bool = False) -> dict:
    """One line of the summary table. Without a reference (a plain measurement) the ratio is None.
    `difference`: compare by ours - reference (signed so that above 0 is better for us) instead of a ratio,
    for accuracies in % and other figures whose ratio says little near 0."""
    ratio = gain = None
    if ours is not None and reference is not None:
        if difference:
            gain = reference - ours if lower_is_better else ours - reference
        elif ours > 0 and reference > 0:
            ratio = reference / ours if lower_is_better else ours / reference
    return {"measure": measure, "ours": ours, "reference": reference, "reference_name": reference_name,
            "unit": unit, "ratio": ratio, "difference": gain, "lower_is_better": lower_is_better, "note": note}


def run_recipe_dict(recipe: dict, path: Path) -> tuple[Path, float]:
    """Write `recipe` to `path` (JSON is YAML), run it through the runner; its run dir and wall seconds."""
    from cpt.recipe.load import load_recipe
    from cpt.runner.run import run_recipe

    path.write_text(json.dumps(recipe))
    started = time.perf_counter()
    run_dir = run_recipe(load_recipe(path), path.read_text()).run_dir
    return run_dir, time.perf_counter() - started


def named_model_folder(model: str) -> Path:
    """The folder of `toy` (built here once) or `smollm2` (SmolLM2-135M-Instruct from its offline wheel)."""
    from cpt.pretrained import ensure_named_model
    from cpt.toy import ensure_toy

    if model == "toy":
        return ensure_toy() / "model"
    if model == "smollm2":
        return ensure_named_model("smollm2-135m-instruct")
    raise ValueError(f"unknown benchmark model {model!r}: expected toy or smollm2")


def alternating_medians(sides: list[str], repeats: int, run_one: Callable[[str], dict],
                        keys: tuple[str, ...]) -> tuple[dict[str, list[dict]], dict[str, dict[str, float]]]:
    """Run `run_one(side)` for every side `repeats` times, the order reversed every other round (a run's position
    in the round moves its time on a shared machine); every run per side, and the median of each of `keys`."""
    runs = {side: [] for side in sides}
    for repeat in range(repeats):
        for side in sides if repeat % 2 == 0 else sides[::-1]:
            runs[side].append(run_one(side))
    median = {side: {key: statistics.median(r[key] for r in rs) for key in keys} for side, rs in runs.items()}
    return runs, median


def write_result(result: dict, out_dir: Path, name: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {path}")
    return path
