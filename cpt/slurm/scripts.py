"""Write a recipe's sbatch scripts from the templates in slurm/templates/: one job per stage (a
multi-node `srun` + `accelerate launch`), an evaluation array over the checkpoints, a report job, and
first, when a cpt stage reads a local or `datasets` domain, a CPU job that runs `cpt prepare` (the
domains tokenised into the run's token cache before any GPU job starts; `--prepare`/`--no-prepare`).

    cpt slurm recipes/qwen2.5-7b-cluster.yaml --nodes 4 --gpus-per-node 8 --partition gpu --time 1-00:00:00

Each stage job owns its nodes by default (`--exclusive`, `--mem=0`: all of each node's memory, and its one
task per node all of the node's CPUs): on clusters that confine tasks with cgroups, the partition's
default (often one CPU and a few GB) would otherwise be shared by every rank of the node.

Every value that reaches a script is either checked against a strict pattern (the #SBATCH values) or
shell-quoted (paths, the recipe, overrides, stage names): a recipe string cannot run a command.
"""

from __future__ import annotations

import re
import shlex
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cpt.core.layout import RunLayout
from cpt.errors import UserError
from cpt.recipe.schema import Recipe
from eval.metrics import BASE_LABEL

TEMPLATES = Path(__file__).resolve().parents[2] / "slurm" / "templates"
LAUNCH_CONFIGS = Path(__file__).resolve().parents[2] / "recipes" / "launch"
_PARTITION = re.compile(r"^[A-Za-z0-9_.,-]+$")
_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$|^\d+-\d+$")  # Slurm's time formats: M, M:S, H:M:S, D-H[:M[:S]]
_JOB_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_MEM = re.compile(r"^\d+[KMGTkmgt]?$")  # Slurm's --mem: a size in MB or with a unit; 0 = all of the node's memory


@dataclass(frozen=True)
class ClusterShape:
    """Where and how big: what `cpt slurm`'s options say."""

    nodes: int = 1
    gpus_per_node: int = 0
    procs_per_node: int | None = None  # default: one per GPU, or one on a CPU-only node
    partition: str | None = None
    time: str | None = None
    launch: str = "zero2"  # a config in recipes/launch/ or a path to an accelerate config
    grace_seconds: int = 600  # how long before the time limit Slurm asks the stage to checkpoint (see --grace)
    exclusive: bool = True  # whole nodes: no other job shares the CPUs, memory or GPUs of a stage's nodes
    mem: str = "0"  # per node; "0" is all the node's memory
    cpus_per_task: int | None = None  # the one task per node; default: all the node's CPUs allocated to the job
    prepare: bool | None = None  # a `cpt prepare` job first; None: when a cpt stage reads a path or hf domain
    prepare_partition: str | None = None  # default: `partition`
    prepare_cpus: int = 8  # the tokenizer's threads
    prepare_mem: str = "32G"  # tokenising streams in batches; the measured peak is far below (docs/data_at_scale.md)

    @property
    def processes(self) -> int:
        return self.nodes * (self.procs_per_node or max(self.gpus_per_node, 1))


@dataclass
class JobScript:
    name: str  # a stage name, "prepare", "eval" or "report"
    path: Path
    array: bool = False
    depends_on: list[str] = field(default_factory=list)


def check_shape(shape: ClusterShape) -> None:
    """Refuse option values that are not what Slurm expects (exit 2 from the CLI)."""
    if shape.nodes < 1 or shape.gpus_per_node < 0 or (shape.procs_per_node is not None and shape.procs_per_node < 1):
        raise UserError("--nodes and --procs-per-node must be 1 or more, --gpus-per-node 0 or more")
    if shape.partition is not None and not _PARTITION.match(shape.partition):
        raise UserError(f"--partition {shape.partition!r}: expected a partition name (letters, digits, _ . , -)")
    if shape.time is not None and not _TIME.match(shape.time):
        raise UserError(f"--time {shape.time!r}: expected a Slurm time limit (MM, HH:MM:SS or D-HH:MM:SS)")
    if shape.grace_seconds < 1:
        raise UserError("--grace must be at least 1 second")
    if shape.time is not None and shape.grace_seconds >= time_limit_seconds(shape.time):
        raise UserError(f"--grace {shape.grace_seconds}: the stop signal would come before the job starts working "
                        f"(--time {shape.time} is {time_limit_seconds(shape.time)} s); give a shorter --grace "
                        "or a longer --time")
    if not _MEM.match(shape.mem):
        raise UserError(f"--mem {shape.mem!r}: expected a size per node as Slurm takes it (e.g. 500G, 64000; "
                        "0 = all of the node's memory)")
    if shape.cpus_per_task is not None and shape.cpus_per_task < 1:
        raise UserError("--cpus-per-task must be 1 or more")
    if shape.prepare_partition is not None and not _PARTITION.match(shape.prepare_partition):
        raise UserError(f"--prepare-partition {shape.prepare_partition!r}: expected a partition name "
                        "(letters, digits, _ . , -)")
    if shape.prepare_cpus < 1:
        raise UserError("--prepare-cpus must be 1 or more")
    if not _MEM.match(shape.prepare_mem) or shape.prepare_mem == "0":
        raise UserError(f"--prepare-mem {shape.prepare_mem!r}: expected a size as Slurm takes it (e.g. 32G)")


def time_limit_seconds(time: str) -> int:
    """Seconds in a Slurm time limit (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS)."""
    days, _, clock = time.rpartition("-")
    fields = [int(f) for f in clock.split(":")]
    if days:  # after a day count the fields are hours[:minutes[:seconds]]
        hours, minutes, seconds = (fields + [0, 0])[:3]
    elif len(fields) == 3:
        hours, minutes, seconds = fields
    else:  # minutes[:seconds]
        hours, (minutes, seconds) = 0, (fields + [0])[:2]
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds


def launch_config_path(launch: str) -> Path:
    named = LAUNCH_CONFIGS / f"{launch}.yaml"
    if named.is_file():
        return named
    if Path(launch).is_file():
        return Path(launch).resolve()
    known = ", ".join(sorted(p.stem for p in LAUNCH_CONFIGS.glob("*.yaml")))
    raise UserError(f"--launch {launch}: neither a config in recipes/launch/ ({known}) nor an accelerate config file")


def eval_checkpoints(recipe: Recipe) -> list[str]:
    """The checkpoints the evaluation array covers: the base (if the recipe evaluates it) and every stage with eval on."""
    if recipe.eval is None:
        return []
    return ([BASE_LABEL] if recipe.eval.base else []) + [s.name for s in recipe.stages if s.eval]


def write_scripts(recipe: Recipe, recipe_path: Path, overrides: list[str], run_dir: Path,
                  shape: ClusterShape) -> list[JobScript]:
    """Write RUN_DIR/slurm/*.sbatch; return the jobs in submission order with their dependencies."""
    check_shape(shape)
    common = _common_values(recipe, recipe_path, overrides, run_dir, shape)  # checks --launch
    folder = RunLayout(run_dir).slurm
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    jobs: list[JobScript] = []
    if shape.prepare if shape.prepare is not None else needs_prepare(recipe):
        path = folder / "00-prepare.sbatch"
        _render("prepare.sbatch", path, common, job_name=_job_name(recipe, "prepare"),
                log_file=_q(f"{folder}/logs/prepare-%j.out"), **_prepare_values(shape))
        jobs.append(JobScript("prepare", path))
    for spec in recipe.stages:
        path = folder / f"{len(jobs):02d}-{spec.name}.sbatch"
        _render("stage.sbatch", path, common, stage=_q(spec.name), job_name=_job_name(recipe, spec.name),
                log_file=_q(f"{folder}/logs/{spec.name}-%j.out"))
        jobs.append(JobScript(spec.name, path, depends_on=[jobs[-1].name] if jobs else []))
    checkpoints = eval_checkpoints(recipe)
    if checkpoints:
        last_stage = jobs[-1].name
        eval_path, report_path = folder / "eval.sbatch", folder / "report.sbatch"
        _render("eval.sbatch", eval_path, common, job_name=_job_name(recipe, "eval"),
                log_file=_q(f"{folder}/logs/eval-%A_%a.out"), last_index=str(len(checkpoints) - 1),
                checkpoints=" ".join(_q(c) for c in checkpoints))
        _render("report.sbatch", report_path, common, job_name=_job_name(recipe, "report"),
                log_file=_q(f"{folder}/logs/report-%j.out"))
        jobs += [JobScript("eval", eval_path, array=True, depends_on=[last_stage]),
                 JobScript("report", report_path, depends_on=["eval"])]
    return jobs


def needs_prepare(recipe: Recipe) -> bool:
    """Whether a cpt stage reads a domain worth a job of its own: a local file or a `datasets` source (the
    embedded toy domains tokenise in seconds)."""
    return any(d.data.toy is None for spec in recipe.stages for d in spec.text_domains())


def _prepare_values(shape: ClusterShape) -> dict[str, str]:
    partition = shape.prepare_partition or shape.partition
    return {
        "prepare_cpus": str(shape.prepare_cpus),
        "prepare_mem": shape.prepare_mem,
        "prepare_partition_directive": f"#SBATCH --partition={partition}" if partition
        else "# (the cluster's default partition)",
    }


def _common_values(recipe: Recipe, recipe_path: Path, overrides: list[str], run_dir: Path,
                   shape: ClusterShape) -> dict[str, str]:
    gpus = shape.gpus_per_node
    return {
        "run_name": _q(recipe.run.name),
        "run_dir": _q(str(run_dir)),
        "workdir": _q(str(Path.cwd())),
        "recipe": _q(str(recipe_path.resolve())),
        "overrides": " ".join(_q(o) for o in overrides),
        "python": _q(sys.executable),
        "launch_config": _q(str(launch_config_path(shape.launch))),
        "nodes": str(shape.nodes),
        "processes": str(shape.processes),
        "grace_seconds": str(shape.grace_seconds),
        "gpu_directive": f"#SBATCH --gpus-per-node={gpus}" if gpus else "# (no GPUs asked for)",
        "eval_gpu_directive": "#SBATCH --gpus=1" if gpus else "# (no GPUs asked for)",
        "partition_directive": f"#SBATCH --partition={shape.partition}" if shape.partition
        else "# (the cluster's default partition)",
        "time_directive": f"#SBATCH --time={shape.time}" if shape.time else "# (the partition's default time limit)",
        **_resource_values(shape),
    }


def _resource_values(shape: ClusterShape) -> dict[str, str]:
    """The stage jobs' node, memory and CPU directives, and the CPUs the stage's srun task asks for."""
    cpus = shape.cpus_per_task
    return {
        "exclusive_directive": "#SBATCH --exclusive" if shape.exclusive else "# (nodes shared with other jobs)",
        "mem_directive": f"#SBATCH --mem={shape.mem}",
        "cpus_directive": f"#SBATCH --cpus-per-task={cpus}" if cpus else "# (cpus per task: all the node's CPUs of the job)",
        "cpus_per_task": str(cpus) if cpus else "${SLURM_CPUS_ON_NODE}",  # read when the job runs
    }


def _render(template: str, path: Path, common: dict[str, str], **values: str) -> None:
    text = string.Template((TEMPLATES / template).read_text(encoding="utf-8")).substitute(common, **values)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


def _q(value: str) -> str:
    return shlex.quote(value)


def _job_name(recipe: Recipe, part: str) -> str:
    return _JOB_NAME_UNSAFE.sub("_", f"cpt-{recipe.run.name}-{part}")[:100]
