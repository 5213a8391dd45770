"""Earlier stages' data, read again by a later stage: replay rows, or the sample an adaptive OSF guard
measures layer importance on.

A recipe names earlier stages (their data sources are read from the run's validated recipe.json)
and/or a file; `EarlierDataSpec` is that part of a recipe section, `earlier_rows` loads the rows.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from cpt.core.layout import RECIPE_FILE
from cpt.core.recipe_base import DataSource, StrictModel
from cpt.errors import UserError
from eval.files import read_json

DATA_STAGE_KINDS = ("cpt", "sft")  # the stage kinds whose data can be read again (text or prompt/completion)


class EarlierDataSpec(StrictModel):
    """Earlier stages whose training data is read again, and/or a file."""

    stages: list[str] = Field(default_factory=list, description="earlier stages whose training data is read")
    path: str | None = Field(None, description="a data file: .jsonl, .json, .parquet or .txt")

    @model_validator(mode="after")
    def _has_a_source(self) -> EarlierDataSpec:
        if not self.stages and self.path is None:
            raise ValueError("give stages (earlier stage names) and/or path (a data file)")
        return self

    def sources(self, run_recipe: dict[str, Any], stage_name: str, key: str) -> list[DataSource]:
        """The data sources: the named earlier stages' data (from the run's recipe.json), then `path`.
        `key` names this section in messages (`replay`, `guard.adaptive`)."""
        stages = run_recipe.get("stages", [])
        names = [s["name"] for s in stages]
        earlier = names[: names.index(stage_name)] if stage_name in names else names
        sources = []
        for name in self.stages:
            if name not in earlier:
                raise UserError(f"stage {stage_name}: {key}.stages: '{name}' is not an earlier stage "
                                f"(earlier: {', '.join(earlier) or 'none'})")
            stage = stages[names.index(name)]
            if stage["kind"] == "cpt":
                sources += [DataSource(**d["data"]) for d in stage["domains"]]
            elif stage["kind"] == "sft":
                sources.append(DataSource(**stage["data"]))
            else:
                raise UserError(f"stage {stage_name}: {key}.stages: '{name}' is a {stage['kind']} stage; "
                                "only cpt and sft data can be read again")
        if self.path is not None:
            sources.append(DataSource(path=self.path))
        return sources


def earlier_rows(ctx, spec: EarlierDataSpec, columns: tuple[str, ...], key: str):
    """The rows `spec` names as a `datasets.Dataset`, in the shape `columns` (e.g. this stage's own rows' fields)."""
    # Imported here: recipe validation (`cpt plan`) imports this module and stays light.
    from datasets import concatenate_datasets

    from cpt.data.rows import SFT_SHAPES, load_rows
    from data_mixing.replay import as_columns

    # Earlier stages' data sources are read from the run's validated recipe, which the runner
    # writes to the run directory (RUN/stages/NAME is this stage's folder) before any stage runs.
    recipe_file = ctx.stage_dir.parent.parent / RECIPE_FILE
    if spec.stages and not recipe_file.is_file():
        raise UserError(f"stage {ctx.spec.name}: {key}.stages needs the run's {RECIPE_FILE}, not found at {recipe_file}")
    run_recipe = read_json(recipe_file) if spec.stages else {}
    parts = []
    for source in spec.sources(run_recipe, ctx.spec.name, key):
        rows = as_columns(load_rows(source, SFT_SHAPES), columns)
        if rows is None:
            raise UserError(f"stage {ctx.spec.name}: {key} data {source.describe()} has rows that do not fit "
                            f"this stage's ({', '.join(columns)})")
        parts.append(rows)
    return concatenate_datasets(parts)


def earlier_sources(ctx, spec: EarlierDataSpec, key: str) -> list[DataSource]:
    """The data sources `spec` names for the stage of `ctx`, not yet read (`key`: the recipe section)."""

    # As in earlier_rows: the earlier stages' sources come from the run's validated recipe.json.
    recipe_file = ctx.stage_dir.parent.parent / RECIPE_FILE
    if spec.stages and not recipe_file.is_file():
        raise UserError(f"stage {ctx.spec.name}: {key}.stages needs the run's {RECIPE_FILE}, not found at {recipe_file}")
    return spec.sources(read_json(recipe_file) if spec.stages else {}, ctx.spec.name, key)


def earlier_stage_problem(names: list[str], earlier: dict[str, str]) -> str | None:
    """Why one of `names` is not an earlier cpt or sft stage (`earlier`: name -> kind), or None."""
    for name in names:
        if earlier.get(name) not in DATA_STAGE_KINDS:
            choices = ", ".join(n for n, kind in earlier.items() if kind in DATA_STAGE_KINDS) or "none"
            return f"'{name}' is not an earlier cpt or sft stage (those: {choices})"
    return None
