"""Everything a user could have got wrong, checked before the run directory is touched:
model folders, template files, every local data file of every stage, and the eval tasks.
A typo in stage 3's data is reported before stage 1 trains for hours."""

from __future__ import annotations

from cpt.data.rows import EVAL_SHAPES, SFT_SHAPES, TEXT_SHAPES, check_source
from cpt.models import check_model_spec
from cpt.recipe.base import DataSource
from cpt.recipe.schema import Recipe


def preflight(recipe: Recipe) -> None:
    """Raise `UserError` on the first problem found."""
    check_model_spec(recipe.model)
    for stage in recipe.stages:
        for source, shapes in stage_sources(stage):
            check_source(source, shapes)
    if recipe.eval:
        for task in recipe.eval.tasks:
            if task.path:
                check_source(DataSource(path=task.path), EVAL_SHAPES)
        from cpt.runner.evaluation import check_eval_spec  # imports lm-eval: only when there is an eval

        check_eval_spec(recipe.eval)


def stage_sources(stage) -> list[tuple[DataSource, tuple]]:
    """The data sources a stage reads, each with the row shapes it accepts."""
    if stage.kind == "cpt":
        return [(domain.data, TEXT_SHAPES) for domain in stage.domains]
    return [(stage.data, SFT_SHAPES)]
