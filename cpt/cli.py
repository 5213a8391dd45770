"""The `cpt` command.

    cpt run RECIPE [key.path=value ...] [--until STAGE] [--no-eval]
                                           run (or resume) every stage, evaluate, print the matrix
    cpt plan RECIPE [key.path=value ...]   validate and show what would run
    cpt prepare RECIPE [key.path=value ...]
                                           tokenise the cpt stages' domains into the run's token cache (and
                                           fetch other datasets) before any stage runs: a CPU job
    cpt slurm RECIPE [key.path=value ...] --nodes N [--gpus-per-node G] [--partition P] [--time T] [--mem M] [--submit]
                                           write (and submit) the run as chained sbatch jobs under RUN_DIR/slurm
                                           (first a `cpt prepare` CPU job when cpt stages read big data)
    cpt slurm status RUN_DIR               the run's Slurm jobs and each stage's status
    cpt eval RUN_DIR [--stage S ...] [--tasks T ...]   evaluate a run's checkpoints (cached), as its own job
    cpt report RUN_DIR                     write RUN_DIR/report/index.html and report.md
    cpt toy [--out DIR]                    build the embedded tiny model and task suite
    cpt import-model NAME_OR_GGUF [--out DIR]   a named model or a .gguf file -> a cached Hugging Face folder

Overrides may stand anywhere after the recipe, before or after the options
(`cpt slurm RECIPE --nodes 2 run.output_dir=X` and `cpt slurm RECIPE run.output_dir=X --nodes 2` are the same).

Progress goes to stderr (the main process's only, under a launcher; -v/--verbose adds debug messages);
results (plans, the run's summary and matrix) go to stdout.

User errors print one message and exit 2; nothing already written is touched. A run asked to stop
(SIGTERM, SIGUSR1, $CPT_STOP_FILE) checkpoints and exits 75: rerun the same command to resume.
A non-finite loss stops its stage with exit 3, a full disk or unwritable output with exit 74;
complete checkpoints are kept in both cases.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cpt.core.layout import RunLayout
from cpt.core.log_setup import configure_logging, process_rank
from cpt.errors import (
    DIVERGED_EXIT,
    PREEMPTED_EXIT,
    STORAGE_EXIT,
    USER_ERROR_EXIT,
    Preempted,
    StorageError,
    TrainingDiverged,
    UserError,
)

_ERROR_EXITS = ((UserError, USER_ERROR_EXIT), (StorageError, STORAGE_EXIT), (TrainingDiverged, DIVERGED_EXIT))


def main(argv: list[str] | None = None) -> int:
    args = _parse(_parser(), argv)
    configure_logging(args.verbose)
    try:
        return args.handler(args) or 0
    except (UserError, StorageError, TrainingDiverged) as exc:
        _tell(f"cpt: error: {exc}")
        return next(code for kind, code in _ERROR_EXITS if isinstance(exc, kind))
    except Preempted as exc:
        _tell(f"cpt: {exc}; rerun the same command to resume")
        return PREEMPTED_EXIT
    except KeyboardInterrupt:
        print("cpt: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse with `key.path=value` overrides allowed anywhere on the line, not only last.

    argparse gives a `nargs="*"` positional only the words before the first option, so an override after
    `--nodes 2` comes back unrecognised; `parse_intermixed_args` would fix that but refuses subcommands.
    So the words argparse leaves over that read as overrides join the command's overrides, in command-line
    order (a later override of the same key wins, as before); anything else is still an error."""
    args, extras = parser.parse_known_args(argv)
    overrides = [word for word in extras if "=" in word and not word.startswith("-")]
    unknown = [word for word in extras if word not in overrides]
    if unknown or (overrides and not hasattr(args, "overrides")):
        parser.error("unrecognized arguments: " + " ".join(unknown or overrides))
    if overrides:
        args.overrides = [*args.overrides, *overrides]
    return args


def _tell(message: str) -> None:
    """Print to stderr once per run: under a launcher, every rank meets the same error."""
    if process_rank() == 0:
        print(message, file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cpt", description="Continual post-training from one YAML recipe.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for name, handler, text in (("run", _cmd_run, "run a recipe"), ("plan", _cmd_plan, "show what would run"),
                                ("prepare", _cmd_prepare, "tokenise the data the stages will read, before they run")):
        command = commands.add_parser(name, help=text)
        command.add_argument("recipe", help="a YAML recipe, e.g. recipes/quickstart.yaml")
        command.add_argument("overrides", nargs="*", metavar="key.path=value")
        command.set_defaults(handler=handler)
    run_options = commands.choices["run"]
    run_options.add_argument("--until", metavar="STAGE", help="stop after this stage (earlier ones run or are skipped)")
    run_options.add_argument("--no-eval", dest="with_eval", action="store_false",
                             help="train only; evaluate later with `cpt eval RUN_DIR`")
    _add_slurm_parser(commands)
    evaluate = commands.add_parser("eval", help="evaluate a run's checkpoints on its tasks (cached)")
    evaluate.add_argument("run_dir", type=Path, help="a run directory, e.g. runs/quickstart")
    evaluate.add_argument("--stage", nargs="+", metavar="S", help="only these checkpoints ('base' or stage names)")
    evaluate.add_argument("--tasks", nargs="+", metavar="T", help="these tasks instead of the recipe's")
    evaluate.set_defaults(handler=_cmd_eval)
    report = commands.add_parser("report", help="write the run's report (HTML and Markdown, with plots)")
    report.add_argument("run_dir", type=Path, help="a run directory, e.g. runs/quickstart")
    report.set_defaults(handler=_cmd_report)
    toy = commands.add_parser("toy", help="build the embedded tiny model and task suite")
    toy.add_argument("--out", type=Path, default=None, help="default: $CPT_TOY_DIR or ~/.cache/cpt/toy-v3")
    toy.add_argument("--seed", type=int, default=0)
    toy.set_defaults(handler=_cmd_toy)
    imported = commands.add_parser("import-model", help="import a named model or a GGUF file as a Hugging Face folder")
    imported.add_argument("model", help="a registered name (e.g. smollm2-135m-instruct) or a path to a .gguf file")
    imported.add_argument("--out", type=Path, default=None, help="default: a folder under $CPT_MODELS_DIR or "
                          "~/.cache/cpt/models (reused while the source is unchanged)")
    imported.set_defaults(handler=_cmd_import_model)
    for command in commands.choices.values():
        command.add_argument("-v", "--verbose", action="store_true", help="say more (debug messages) as it runs")
    return parser


def _add_slurm_parser(commands) -> None:
    slurm = commands.add_parser("slurm", help="run a recipe as chained Slurm jobs (or: cpt slurm status RUN_DIR)")
    slurm.add_argument("recipe", help="a YAML recipe, or 'status' followed by a run directory")
    slurm.add_argument("overrides", nargs="*", metavar="key.path=value")
    slurm.add_argument("--nodes", type=int, default=1)
    slurm.add_argument("--gpus-per-node", type=int, default=0)
    slurm.add_argument("--procs-per-node", type=int, default=None, help="default: one per GPU (one without GPUs)")
    slurm.add_argument("--partition", default=None)
    slurm.add_argument("--time", default=None, help="each job's time limit, e.g. 04:00:00 or 1-00:00:00")
    slurm.add_argument("--launch", default="zero2", help="ddp, zero2, zero3 (recipes/launch/) or an accelerate config")
    slurm.add_argument("--grace", type=int, default=600,
                       help="seconds before the time limit to checkpoint and requeue: one checkpoint save and up "
                            "to a minute of Slurm's signal delay must fit in it")
    slurm.add_argument("--exclusive", action=argparse.BooleanOptionalAction, default=True,
                       help="stage jobs own their nodes (default; --no-exclusive to share them)")
    slurm.add_argument("--mem", default="0", help="memory per node for stage jobs (default 0: all of it), e.g. 500G")
    slurm.add_argument("--cpus-per-task", type=int, default=None,
                       help="CPUs of the one task per node (default: all the node's CPUs the job holds)")
    slurm.add_argument("--prepare", action=argparse.BooleanOptionalAction, default=None,
                       help="a CPU job running `cpt prepare` before the stages (default: when a cpt stage reads "
                            "a local or datasets domain)")
    slurm.add_argument("--prepare-partition", default=None, help="the prepare job's partition (default: --partition)")
    slurm.add_argument("--prepare-cpus", type=int, default=8, help="CPUs of the prepare job (the tokenizer's threads)")
    slurm.add_argument("--prepare-mem", default="32G", help="memory of the prepare job")
    slurm.add_argument("--submit", action="store_true", help="submit the jobs with sbatch (else only write them)")
    slurm.set_defaults(handler=_cmd_slurm)


def _load(args):
    from cpt.recipe.load import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    return recipe, Path(args.recipe).read_text(encoding="utf-8")


def _cmd_plan(args) -> int:
    from cpt.plan import describe_plan
    from cpt.runner.preflight import preflight

    recipe, _ = _load(args)
    preflight(recipe)
    print(describe_plan(recipe))
    return 0


def _cmd_prepare(args) -> int:
    from cpt.runner.preflight import preflight

    recipe, _ = _load(args)
    preflight(recipe)
    from cpt.core.storage import reported_storage_errors
    from cpt.runner.prepare import prepare_recipe
    from cpt.runner.run import run_dir_of

    _quiet_library_progress()
    with reported_storage_errors(run_dir_of(recipe)):  # a full disk: exit 74, as for `cpt run`
        for line in prepare_recipe(recipe):
            print(line)
    return 0


def _cmd_run(args) -> int:
    from cpt.runner.preflight import preflight

    # a recipe's mistakes are reported before the training libraries load (10-15 s on 2 CPU cores)
    recipe, text = _load(args)
    preflight(recipe)

    from cpt.core.distributed import init_distributed, shutdown
    from cpt.core.preemption import install_stop_handlers
    from cpt.core.storage import reported_storage_errors
    from cpt.runner.run import run_dir_of, run_recipe

    _quiet_library_progress()
    install_stop_handlers()
    init_distributed()
    if args.overrides:
        text += "\n# command-line overrides:\n" + "".join(f"#   {o}\n" for o in args.overrides)
    try:
        with reported_storage_errors(run_dir_of(recipe)):
            summary = run_recipe(recipe, text, until=args.until, with_eval=args.with_eval, preflighted=True)
    finally:
        shutdown()
    if process_rank() == 0:  # under a launcher every process has the summary: one shows it
        print("\n".join(summary.lines), flush=True)
    return 0


def _cmd_slurm(args) -> int:
    from cpt.slurm.jobs import status_lines, submit
    from cpt.slurm.scripts import ClusterShape, write_scripts

    if args.recipe == "status":
        if len(args.overrides) != 1:
            raise UserError("usage: cpt slurm status RUN_DIR")
        print("\n".join(status_lines(Path(args.overrides[0]))))
        return 0
    from cpt.runner.run import run_dir_of

    recipe, _ = _load(args)
    shape = ClusterShape(args.nodes, args.gpus_per_node, args.procs_per_node, args.partition, args.time,
                         args.launch, args.grace, args.exclusive, args.mem, args.cpus_per_task, args.prepare,
                         args.prepare_partition, args.prepare_cpus, args.prepare_mem)
    run_dir = run_dir_of(recipe).resolve()
    jobs = write_scripts(recipe, Path(args.recipe), args.overrides, run_dir, shape)
    print(f"wrote {len(jobs)} job scripts in {RunLayout(run_dir).slurm}: " + ", ".join(job.path.name for job in jobs))
    if args.submit:
        ids = submit(jobs, run_dir)
        print("submitted: " + ", ".join(f"{name} {job_id}" for name, job_id in ids.items()))
        print(f"follow with: cpt slurm status {run_dir}")
    return 0


def _cmd_eval(args) -> int:
    from cpt.core.storage import reported_storage_errors
    from cpt.runner.eval_run import evaluate_run

    _quiet_library_progress()
    with reported_storage_errors(args.run_dir):
        print("\n".join(evaluate_run(args.run_dir, args.stage, args.tasks)))
    return 0


def _cmd_report(args) -> int:
    from cpt.report import write_run_report

    print(f"report: {write_run_report(args.run_dir)}")
    return 0


def _quiet_library_progress() -> None:
    """Keep the training progress bar; drop the per-file loading and per-map bars around it."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def _cmd_toy(args) -> int:
    from cpt.toy import ensure_toy

    root = ensure_toy(args.out, seed=args.seed)
    print(f"toy model and tasks ready in {root}")
    return 0


def _cmd_import_model(args) -> int:
    from cpt.pretrained import import_gguf, is_gguf_name, lookup
    from cpt.pretrained.named import ensure_named_gguf, ensure_named_model

    if lookup(args.model) and not Path(args.model).exists():
        named = args.model
        folder = ensure_named_model(named) if args.out is None else import_gguf(ensure_named_gguf(named), args.out)
    elif is_gguf_name(args.model) or Path(args.model).is_file():
        folder = import_gguf(Path(args.model), args.out)
    else:
        from cpt.pretrained import REGISTRY

        raise UserError(f"{args.model}: not a .gguf file and not a known model name (known: {', '.join(REGISTRY)})")
    print(f"model ready in {folder}: a recipe can name it (model.name_or_path) or the original")
    return 0


if __name__ == "__main__":
    sys.exit(main())
