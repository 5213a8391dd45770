"""A cpt domain of several GB: peak memory and time to the first training step, with and without `cpt prepare`.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/corpus_scale.py [--dir DIR] [--gigabytes 2.1]
        [--share 0.1] [--old-ref 441c8b7] [--skip old_rows] [--with-whole-cold] [--keep] [--out benchmarks/results]

Writes a deterministic multi-file Parquet corpus (benchmarks/corpus_files.py: 16 uncompressed files,
2.1 GB of text by default) under --dir (default: a temporary folder, deleted afterwards unless --keep),
then runs one cpt stage of the embedded toy model on it (a few steps: what is measured is the way to the
first one) as `python -m cpt` processes, each measured with its whole process tree (benchmarks/tree_memory.py):

    rows_prepare   `cpt prepare`, then `cpt run`: the domain with max_examples = --share of the rows (the
                   cluster recipe takes 2M of fineweb-edu sample-10BT's 9.7M documents, ~20%; 10% here keeps
                   the run near an hour on 2 shared cores)
    rows_cold      `cpt run` alone on the same domain, nothing cached
    whole_prepare  `cpt prepare`, then `cpt run`: the whole corpus
    whole_cold     `cpt run` alone on the whole corpus (only with --with-whole-cold: its time to the first step
                   is prepare's plus a run after it, another hour of tokenising here)
    old_rows       the code before Parquet was memory-mapped (`git archive` of --old-ref), on the same rows of
                   the corpus as one Parquet file (it read single files only): read whole into Python rows,
                   max_examples selected afterwards, tokenised in memory
    old_half       the same on a file of the corpus' first half (the whole corpus in one in-memory string
                   column passes 2 GB, which that code does not survive: see the result)

Every configuration has its own `datasets` cache and run directory (nothing carries over but the OS page
cache), tokenises with --threads tokenizer threads (RAYON_NUM_THREADS) and runs torch on one thread.
Prints a table and writes corpus_scale.json to --out and to docs/results/ (--merge: over the runs of the
JSON already in --out, e.g. to add configurations measured later on the same deterministic corpus).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import add_common_args, machine, parse_with_mode, row, write_result
from corpus_files import write_corpus, write_single_file
from tree_memory import measure

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ("rows_prepare", "rows_cold", "whole_prepare", "whole_cold", "old_rows", "old_half")
FIRST_STEP = r"""['"]loss['"]\s*:"""  # the Trainer's log line of step 1 (logging_steps: 1)
MODE_DEFAULTS = {"quick": {"gigabytes": 2.1}, "full": {"gigabytes": 8.0}}


def stage_recipe(output_dir: Path, name: str, data: dict, steps: int) -> dict:
    train = {"max_steps": steps, "per_device_train_batch_size": 8, "max_length": 128, "learning_rate": 1e-3,
             "logging_steps": 1, "save_steps": 100_000, "disable_tqdm": True}
    return {"run": {"name": name, "output_dir": str(output_dir), "seed": 0}, "model": {"name_or_path": "toy"},
            "stages": [{"name": "web", "kind": "cpt", "domains": [{"name": "web", "data": data}], "train": train}]}


def run_config(name: str, data: dict, work: Path, source: Path, env: dict, steps: int, prepare: bool) -> dict:
    """Measure `cpt prepare` (if asked) and `cpt run` of one configuration in its own folder; then delete the
    folder's caches, keeping their sizes."""
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    recipe = folder / "recipe.json"
    recipe.write_text(json.dumps(stage_recipe(folder / "runs", name, data, steps)))
    env = {**env, "HF_DATASETS_CACHE": str(folder / "hf-datasets"), "PYTHONPATH": str(source)}
    python = [sys.executable, "-m", "cpt"]
    steps_run = {}
    if prepare:
        steps_run["prepare"] = measure([*python, "prepare", str(recipe)], env, folder / "prepare.log", cwd=source)
        print(f"   {name} prepare: {_short(steps_run['prepare'])}", flush=True)
    steps_run["run"] = measure([*python, "run", str(recipe), "--no-eval"], env, folder / "run.log",
                               first=FIRST_STEP, cwd=source)
    print(f"   {name} run: {_short(steps_run['run'])}", flush=True)
    result = {"name": name, "data": data, "steps": steps_run, "tokens": _tokens(folder / "prepare.log"),
              "datasets_cache_gb": _size_gb(folder / "hf-datasets"),
              "token_cache_gb": _size_gb(folder / "runs" / name / "cache" / "tokens")}
    for log in folder.glob("*.log"):  # kept with the result: the tail says what went wrong, if anything
        text = log.read_text(errors="replace")
        result.setdefault("log_tails", {})[log.stem] = text[-800:]
        if steps_run[log.stem]["returncode"] != 0:
            result["error"] = [line for line in text.splitlines() if line.strip()][-1][:300]
    shutil.rmtree(folder, ignore_errors=True)
    return result


def _short(run: dict) -> str:
    return (f"exit {run['returncode']}, {run['seconds']} s (first step at {run['seconds_to_first']} s), peak RSS "
            f"{run['peak_rss_gb']} GB (anon {run['peak_anon_gb']}, mapped files {run['peak_file_gb']})"
            + (f", STOPPED: {run['stopped']}" if run["stopped"] else ""))


def _tokens(log: Path) -> int | None:
    match = re.search(r"(\d+) documents, (\d+) tokens", log.read_text()) if log.is_file() else None
    return int(match.group(2)) if match else None


def _size_gb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e9, 3) if folder.is_dir() else 0.0


def old_source(ref: str, work: Path) -> Path:
    """The repository as of `ref`, unpacked (the code before this change, to run as a reference)."""
    target = work / f"source-{ref}"
    if not (target / "cpt").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def table(results: dict[str, dict], rows_taken: int) -> list[dict]:
    def step(config: str, which: str, key: str):
        return results.get(config, {}).get("steps", {}).get(which, {}).get(key)

    old = "old_rows" if step("old_rows", "run", "seconds_to_first") is not None else "old_half"
    old_name = ("before: the corpus as one file, read whole into Python rows" if old == "old_rows" else
                "before: the corpus' first half as one file (the whole one fails), read whole into Python rows")
    lines = []
    for config, label in (("rows_prepare", "after cpt prepare"), ("rows_cold", "without cpt prepare")):
        what = f"{rows_taken} rows, {label}"
        lines += [
            row(f"time to first step, {what}", step(config, "run", "seconds_to_first"),
                step(old, "run", "seconds_to_first"), old_name, "s", lower_is_better=True),
            row(f"peak RSS to first step, {what}", step(config, "run", "peak_rss_gb"), step(old, "run", "peak_rss_gb"),
                old_name, "GB", lower_is_better=True),
            row(f"peak anonymous memory, {what}", step(config, "run", "peak_anon_gb"),
                step(old, "run", "peak_anon_gb"), old_name, "GB", lower_is_better=True),
        ]
    lines += [row(f"cpt prepare, {rows_taken} rows: seconds", step("rows_prepare", "prepare", "seconds"), unit="s"),
              row(f"cpt prepare, {rows_taken} rows: peak RSS", step("rows_prepare", "prepare", "peak_rss_gb"),
                  unit="GB")]
    for config, label in (("whole_prepare", "after cpt prepare"), ("whole_cold", "without cpt prepare")):
        lines += [row(f"whole corpus, {label}: time to first step", step(config, "run", "seconds_to_first"), unit="s"),
                  row(f"whole corpus, {label}: peak RSS", step(config, "run", "peak_rss_gb"), unit="GB"),
                  row(f"whole corpus, {label}: peak anonymous memory", step(config, "run", "peak_anon_gb"), unit="GB")]
    lines += [row("whole corpus, cpt prepare: seconds", step("whole_prepare", "prepare", "seconds"), unit="s"),
              row("whole corpus, cpt prepare: peak RSS", step("whole_prepare", "prepare", "peak_rss_gb"), unit="GB"),
              row("whole corpus, cpt prepare: peak anonymous memory",
                  step("whole_prepare", "prepare", "peak_anon_gb"), unit="GB")]
    failed = results.get("old_rows", {}).get("error")
    if failed:
        lines.append(row("before, the whole corpus as one file: peak RSS until it failed",
                         step("old_rows", "run", "peak_rss_gb"), unit="GB",
                         note=f"failed after {step('old_rows', 'run', 'seconds')} s: {failed[:120]}"))
    return [line for line in lines if line["ours"] is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--dir", type=Path, default=None, help="where the corpus and the runs go (default: a temp dir)")
    parser.add_argument("--gigabytes", type=float, help="text in the corpus")
    parser.add_argument("--share", type=float, default=0.1, help="max_examples as a share of the corpus' rows")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="tokenizer threads (RAYON_NUM_THREADS)")
    parser.add_argument("--old-ref", default="441c8b7", help="the commit whose data loading is the reference")
    parser.add_argument("--skip", nargs="*", choices=CONFIGS, default=[])
    parser.add_argument("--with-whole-cold", action="store_true", help="also run whole_cold")
    parser.add_argument("--keep", action="store_true", help="keep the corpus (in --dir) for another run")
    parser.add_argument("--merge", action="store_true", help="keep the other runs of the JSON already in --out")
    args = parse_with_mode(parser, MODE_DEFAULTS)
    if not args.with_whole_cold:
        args.skip.append("whole_cold")
    work = args.dir or Path(tempfile.mkdtemp(prefix="corpus-scale-"))
    try:
        result = measure_all(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    write_result(result, args.out, "corpus_scale.json")
    write_result(result, REPO / "docs" / "results", "corpus_scale.json")


def measure_all(args, work: Path) -> dict:
    from cpt.toy import ensure_toy

    print(f"writing a {args.gigabytes} GB corpus under {work} ...", flush=True)
    corpus = write_corpus(work / "corpus", args.gigabytes)
    rows_taken = int(corpus["rows"] * args.share)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RAYON_NUM_THREADS": str(args.threads),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1",
           "CPT_TOY_DIR": str(ensure_toy(work / "toy"))}
    folder = str(work / "corpus")
    plans = {"rows_prepare": ({"path": folder, "max_examples": rows_taken}, REPO, True),
             "rows_cold": ({"path": folder, "max_examples": rows_taken}, REPO, False),
             "whole_prepare": ({"path": folder}, REPO, True),
             "whole_cold": ({"path": folder}, REPO, False)}
    for name, parts, file_name in (("old_rows", corpus["files"], "corpus-one-file.parquet"),
                                   ("old_half", corpus["files"][: len(corpus["files"]) // 2], "corpus-half.parquet")):
        if name not in args.skip:
            single = write_single_file(parts, work / file_name)
            plans[name] = ({"path": str(single), "max_examples": rows_taken}, old_source(args.old_ref, work), False)
    earlier = args.out / "corpus_scale.json"
    results = json.loads(earlier.read_text())["runs"] if args.merge and earlier.is_file() else {}
    for name, (data, source, prepare) in plans.items():
        if name not in args.skip:
            print(f"== {name}", flush=True)
            results[name] = run_config(name, data, work, source, env, args.steps, prepare)
    lines = table(results, rows_taken)
    for line in lines:
        reference = f"  (before: {line['reference']})" if line["reference"] is not None else ""
        print(f"{line['measure']:<62} {line['ours']:>9} {line['unit']}{reference}")
    return {"benchmark": "corpus_scale", "machine": machine(), "mode": args.mode, "table": lines,
            "corpus": {k: v for k, v in corpus.items() if k != "files"} | {"file_count": len(corpus["files"])},
            "settings": {"share": args.share, "rows_taken": rows_taken, "steps": args.steps,
                         "tokenizer_threads": args.threads, "torch_threads": 1, "old_ref": args.old_ref,
                         "batch": 8, "max_length": 128},
            "runs": results}


if __name__ == "__main__":
    main()
