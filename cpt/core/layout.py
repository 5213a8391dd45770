"""Every path and file name of a run directory, in one place.

    run = RunLayout(Path("runs/quickstart"))
    run.manifest                     # runs/quickstart/manifest.json
    run.stage("sft_sorting").model   # runs/quickstart/stages/sft_sorting/model
    run.results("base")              # runs/quickstart/base/eval (a checkpoint's cached eval results)

The runner, stages, plan, eval, report and Slurm jobs all find files through these objects, so the
layout below is written down once:

    RUN/manifest.json            what is done (core/manifest.py)
    RUN/recipe.yaml              the recipe as given; RUN/recipe.json: validated, command-line overrides applied
    RUN/stages/NAME/             one stage: model/, checkpoints/, train_log.json, mixture_weights.json, eval/
    RUN/base/eval/               the base model's eval results
    RUN/eval/                    the run's matrix.json/.txt, metrics.json, timings.json; tasks/ made from eval files
    RUN/report/                  index.html, report.md and plots (cpt report)
    RUN/cache/tokens/            tokenised corpora (cpt/data/tokens.py, cpt prepare)
    RUN/slurm/                   job scripts and jobs.json (cpt slurm)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eval.metrics import BASE_LABEL  # the base model's row in the eval matrix, and its folder here

MANIFEST_FILE = "manifest.json"
RECIPE_FILE = "recipe.json"  # the validated recipe with command-line overrides applied
TRAIN_LOG_FILE = "train_log.json"  # the trainer's log history, for the report's curves
MIXTURE_LOG_FILE = "mixture_weights.json"  # a mixing cpt stage's weight trajectory
EVAL_DIR = "eval"


@dataclass(frozen=True)
class StageLayout:
    """One stage's folder, RUN/stages/NAME: everything the stage writes lives here."""

    dir: Path

    @property
    def model(self) -> Path:
        """The stage's final model: a plain Hugging Face folder (safetensors, config, tokenizer)."""
        return self.dir / "model"

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def train_log(self) -> Path:
        return self.dir / TRAIN_LOG_FILE

    @property
    def train_args(self) -> Path:
        """The settings the trainer ran with, as TRL resolved them."""
        return self.dir / "train_args.json"

    @property
    def mixture_log(self) -> Path:
        return self.dir / MIXTURE_LOG_FILE

    @property
    def eval(self) -> Path:
        """The cached eval results of this stage's model."""
        return self.dir / EVAL_DIR


@dataclass(frozen=True)
class RunLayout:
    """A run directory, RUN = run.output_dir / run.name."""

    dir: Path

    @classmethod
    def of(cls, output_dir: str | Path, name: str) -> RunLayout:
        return cls(Path(output_dir) / name)

    @property
    def manifest(self) -> Path:
        return self.dir / MANIFEST_FILE

    @property
    def recipe(self) -> Path:
        return self.dir / RECIPE_FILE

    @property
    def recipe_text(self) -> Path:
        """The recipe file as the user wrote it."""
        return self.dir / "recipe.yaml"

    @property
    def stages(self) -> Path:
        return self.dir / "stages"

    def stage(self, name: str) -> StageLayout:
        return StageLayout(self.stages / name)

    def results(self, label: str) -> Path:
        """Where the eval results of checkpoint `label` ('base' or a stage name) are cached."""
        return self.dir / BASE_LABEL / EVAL_DIR if label == BASE_LABEL else self.stage(label).eval

    @property
    def eval(self) -> Path:
        """The run's eval summary: matrix.json, metrics.json, timings.json."""
        return self.dir / EVAL_DIR

    @property
    def matrix(self) -> Path:
        return self.eval / "matrix.json"

    @property
    def matrix_text(self) -> Path:
        """The matrix as printed."""
        return self.eval / "matrix.txt"

    @property
    def metrics(self) -> Path:
        return self.eval / "metrics.json"

    @property
    def timings(self) -> Path:
        return self.eval / "timings.json"

    @property
    def eval_tasks(self) -> Path:
        """The lm-eval tasks made from `path:` eval files."""
        return self.eval / "tasks"

    @property
    def report(self) -> Path:
        return self.dir / "report"

    @property
    def token_cache(self) -> Path:
        return self.dir / "cache" / "tokens"

    @property
    def slurm(self) -> Path:
        return self.dir / "slurm"
