"""Earlier stages' data, read again by a later stage: replay rows, or the sample an adaptive OSF guard
measures layer importance on.

A recipe names earlier stages and/or a file; `EarlierDataSpec` is that part of a recipe section. The
runner resolves the stages before the current one into `StageContext.earlier` (`earlier_stages`), so a
stage never reads its run back from disk; `earlier_rows` loads the rows:

    ctx = StageContext(..., earlier=earlier_stages(recipe.stages[:index]))
    rows = earlier_rows(ctx, ctx.spec.replay, ("prompt", "completion"), "replay")
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, model_validator

from cpt.core.recipe_base import DataSource, StrictModel
from cpt.errors import UserError


@dataclass(frozen=True)
class EarlierStage:
    """A stage before the current one, as a later stage may see it: its name, kind and training data."""

    name: str
    kind: str
    sources: tuple[DataSource, ...]  # its training data where its kind's data can be read again; else none
    rereadable: bool


def earlier_stages(specs) -> tuple[EarlierStage, ...]:
    """The runner's view of the stages before the current one (`specs`: their recipe sections, in order)."""
    return tuple(EarlierStage(s.name, s.kind, s.training_sources() if s.data_rereadable else (), s.data_rereadable)
                 for s in specs)


class EarlierDataSpec(StrictModel):
    """Earlier stages whose training data is read again, and/or a file."""

    stages: list[str] = Field(default_factory=list, description="earlier stages whose training data is read")
    path: str | None = Field(None, description="a data file: .jsonl, .json, .parquet or .txt")

    @model_validator(mode="after")
    def _has_a_source(self) -> EarlierDataSpec:
        if not self.stages and self.path is None:
            raise ValueError("give stages (earlier stage names) and/or path (a data file)")
        return self

    def sources(self, earlier: tuple[EarlierStage, ...], stage_name: str, key: str) -> list[DataSource]:
        """The data sources: the named earlier stages' data, then `path`. `key` names this section in
        messages (`replay`, `guard.adaptive`)."""
        return [source for _, group in self.source_groups(earlier, stage_name, key) for source in group]

    def source_groups(self, earlier: tuple[EarlierStage, ...], stage_name: str,
                      key: str) -> list[tuple[str, list[DataSource]]]:
        """The data sources grouped by where they come from: (earlier stage name, its data) in the order
        named, then (`"path"`, [the file]) when `path` is set."""
        by_name = {stage.name: stage for stage in earlier}
        groups = []
        for name in self.stages:
            stage = by_name.get(name)
            if stage is None:
                raise UserError(f"stage {stage_name}: {key}.stages: '{name}' is not an earlier stage "
                                f"(earlier: {', '.join(by_name) or 'none'})")
            if not stage.rereadable:
                raise UserError(f"stage {stage_name}: {key}.stages: '{name}' is a {stage.kind} stage, "
                                "whose data cannot be read again")
            groups.append((name, list(stage.sources)))
        if self.path is not None:
            groups.append(("path", [DataSource(path=self.path)]))
        return groups


def earlier_rows(ctx, spec: EarlierDataSpec, columns: tuple[str, ...], key: str):
    """The rows `spec` names as a `datasets.Dataset`, in the shape `columns` (e.g. this stage's own rows' fields)."""
    # Imported here: recipe validation (`cpt plan`) imports this module and stays light.
    from datasets import concatenate_datasets

    return concatenate_datasets([rows for _, rows in earlier_row_groups(ctx, spec, columns, key)])


def earlier_row_groups(ctx, spec: EarlierDataSpec, columns: tuple[str, ...], key: str) -> list[tuple[str, object]]:
    """The rows `spec` names, one `datasets.Dataset` per group of `EarlierDataSpec.source_groups` (an earlier
    stage's data, or the file), each as (the group's name, its rows) in the shape `columns`."""
    from datasets import concatenate_datasets

    from cpt.data.rows import SFT_SHAPES, load_rows
    from data_mixing.replay import as_columns

    groups = []
    for name, sources in spec.source_groups(ctx.earlier, ctx.spec.name, key):
        parts = []
        for source in sources:
            rows = as_columns(load_rows(source, SFT_SHAPES), columns)
            if rows is None:
                raise UserError(f"stage {ctx.spec.name}: {key} data {source.describe()} has rows that do not fit "
                                f"this stage's ({', '.join(columns)})")
            parts.append(rows)
        groups.append((name, concatenate_datasets(parts)))
    return groups


def replay_parts(ctx, spec, columns: tuple[str, ...]) -> list[tuple[str | None, object, float]]:
    """A stage's replayed rows as (source, rows, share of the stage's rows): one pooled part (source None) without
    `spec.weights` (each source's part then follows its size), else one part per source at its weighted share."""
    if spec.weights is None:
        return [(None, earlier_rows(ctx, spec, columns, "replay"), spec.ratio)]
    groups = earlier_row_groups(ctx, spec, columns, "replay")
    shares = spec.shares([name for name, _ in groups])
    return [(name, rows, share) for (name, rows), share in zip(groups, shares, strict=True)]


def earlier_sources(ctx, spec: EarlierDataSpec, key: str) -> list[DataSource]:
    """The data sources `spec` names for the stage of `ctx`, not yet read (`key`: the recipe section)."""
    return spec.sources(ctx.earlier, ctx.spec.name, key)


def earlier_stage_problem(names: list[str], earlier: dict[str, str], rereadable_kinds: tuple[str, ...]) -> str | None:
    """Why one of `names` is not an earlier stage whose data can be read again (`earlier`: name -> kind;
    `rereadable_kinds`: the kinds whose data can, from the stage registry), or None."""
    for name in names:
        if earlier.get(name) not in rereadable_kinds:
            choices = ", ".join(n for n, kind in earlier.items() if kind in rereadable_kinds) or "none"
            return f"'{name}' is not an earlier {' or '.join(rereadable_kinds)} stage (those: {choices})"
    return None
