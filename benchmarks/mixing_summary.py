"""The mixing benchmark's numbers from its runs: per-method table rows (mean ± std over seeds), the
summary rows of `python -m benchmarks`, and the markdown table.

    from mixing_summary import summarise, markdown, table, compact
    rows, targets = summarise(results, methods, domains, seeds)   # results: benchmarks/mixing.py run_method()s
    print(markdown(rows))
    small = compact(report)      # the result JSON without the curves: the copy kept under docs/results/

A run is {"method", "seed", "curve": [(step, {domain: held-out loss})], "validation_loss": {domain: loss},
"final_weights": {domain: w}, "weights": [(step, {domain: w})]}. Each seed's target is uniform's final
worst-domain held-out loss with that seed; a method's "steps" are the first scored step at which its own
worst-domain held-out loss is at or below that target.
"""

from __future__ import annotations

import statistics

from common import row

UNIFORM = "uniform"


def steps_to_reach(curve: list, target: float) -> int | None:
    """First scored step whose worst-domain loss is at or below `target` (None: never within the budget)."""
    return next((step for step, losses in curve if max(losses.values()) <= target), None)


def distance_from_uniform(weights: dict[str, float]) -> float:
    """Total variation distance of a mix from the uniform one: 0 uniform, 1 - 1/K all on one domain."""
    k = len(weights)
    return 0.5 * sum(abs(w - 1.0 / k) for w in weights.values())


def spread(values: list[float], digits: int = 3) -> str:
    """'mean ± std' over seeds ('-' for none)."""
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def targets_per_seed(results: list[dict]) -> dict[int, float]:
    return {r["seed"]: max(r["curve"][-1][1].values()) for r in results if r["method"] == UNIFORM}


def steps_reached(runs: list[dict], targets: dict[int, float]) -> list[int]:
    """The steps each run needed to reach its seed's target, for the runs that reached it."""
    return [s for s in (steps_to_reach(r["curve"], targets[r["seed"]]) for r in runs) if s is not None]


def summarise(results: list[dict], methods: list[str], domains: list[str],
              seeds: list[int]) -> tuple[list[dict], dict[int, float]]:
    """One table row per method, and each seed's target (uniform's final worst-domain held-out loss)."""
    targets = targets_per_seed(results)
    uniform_steps = steps_reached([r for r in results if r["method"] == UNIFORM], targets)
    rows = []
    for method in methods:
        runs = [r for r in results if r["method"] == method]
        reached = steps_reached(runs, targets)
        relative = (f"{statistics.mean(reached) / statistics.mean(uniform_steps):.2f}x"
                    if reached and uniform_steps else "-")
        rows.append({
            "method": method,
            **{f"{d} val. loss": spread([r["validation_loss"][d] for r in runs]) for d in domains},
            "worst val. loss": spread([max(r["validation_loss"].values()) for r in runs]),
            "steps to uniform's final worst": f"{spread(reached, 0)} ({len(reached)}/{len(seeds)} reached)",
            "steps / uniform's": relative,
            "final weights": " / ".join(f"{spread([r['final_weights'][d] for r in runs], 2)}" for d in domains),
            "max distance from uniform": spread([max(distance_from_uniform(w) for _, w in r["weights"])
                                                 for r in runs], 2),
        })
    return rows, targets


def markdown(rows: list[dict]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r[h]) for h in header) + " |" for r in rows]
    return "\n".join(lines)


def table(results: list[dict], learned: list[str], targets: dict[int, float], steps: int, label: str = "",
          reference: str = "uniform") -> list[dict]:
    """Summary rows of `python -m benchmarks`: each learned method against uniform, worst-domain validation
    loss and steps to uniform's final worst-domain held-out loss. `label` prefixes each measure."""
    runs = {m: [r for r in results if r["method"] == m] for m in (*learned, UNIFORM)}
    reached = {m: steps_reached(rs, targets) for m, rs in runs.items()}
    mean_steps = {m: statistics.mean(s) if s else None for m, s in reached.items()}
    rows = []
    for m in learned:
        rows.append(row(f"{label}worst-domain validation loss, {m}", _mean_worst_loss(runs[m]),
                        _mean_worst_loss(runs[UNIFORM]), reference, "loss", lower_is_better=True,
                        note=f"mean over {len(runs[m])} seed(s)"))
        rows.append(row(f"{label}steps to uniform's final worst-domain held-out loss, {m}", mean_steps[m],
                        mean_steps[UNIFORM], reference, "steps", lower_is_better=True,
                        note=f"reached in {len(reached[m])}/{len(runs[m])} seed(s) within {steps} steps"))
    return rows


def _mean_worst_loss(runs: list[dict]) -> float:
    return statistics.mean(max(r["validation_loss"].values()) for r in runs)


def compact(report: dict) -> dict:
    """The report without each run's curves and weight trajectory (a few KB instead of 100-200), each run
    keeping what the table is made of: its steps to the target, final weights and validation losses."""
    targets = {int(seed): t for seed, t in report["target_worst_loss_per_seed"].items()}
    runs = [{**{k: v for k, v in r.items() if k not in ("curve", "weights")},
             "steps_to_target": steps_to_reach(r["curve"], targets[r["seed"]]),
             "final_held_out_loss": r["curve"][-1][1],
             "max_distance_from_uniform": max(distance_from_uniform(w) for _, w in r["weights"])}
            for r in report["runs"]]
    return {**report, "runs": runs}
