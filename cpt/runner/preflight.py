"""Everything a user could have got wrong, checked before the run directory is touched:
model folders, the output folder, template files, every local data file of every stage, and the eval tasks.
A typo in stage 3's data is reported before stage 1 trains for hours."""

from __future__ import annotations

from pathlib import Path

from cpt.core.recipe_base import DataSource
from cpt.core.storage import check_output_dir
from cpt.data.rows import EVAL_SHAPES, check_source
from cpt.errors import UserError
from cpt.guards.support import Launch, launch_of, launch_refusals
from cpt.models import base_config_if_present, check_model_spec
from cpt.recipe.schema import Recipe
from cpt.stages.rehearsal_config import PROMPT_ROW_SHAPES


def preflight(recipe: Recipe) -> None:
    """Raise `UserError` on the first problem found."""
    check_model_spec(recipe.model)
    check_output_dir(Path(recipe.run.output_dir))
    launch, checked = launch_of(recipe), set()
    _check_freeze_guards(recipe)
    for stage in recipe.stages:
        for source, shapes in stage_sources(stage):
            if (source.model_dump_json(), shapes) not in checked:  # a file many stages train on is read once
                check_source(source, shapes)
                checked.add((source.model_dump_json(), shapes))
        _check_stage_extras(stage, launch)
    if recipe.eval:
        for task in recipe.eval.tasks:
            if task.path:
                check_source(DataSource(path=task.path), EVAL_SHAPES)
        from cpt.runner.evaluation import check_eval_spec  # imports lm-eval: only when there is an eval

        check_eval_spec(recipe.eval, _local_base(recipe) if recipe.eval.base else [])


def _check_freeze_guards(recipe: Recipe) -> None:
    """A freeze guard's `layers` against the base model's layer count, and its `modules` against a decoder layer's
    children, when the base model's config is on disk (otherwise the guard checks both on the loaded model, at the
    stage's start: a typo in a later stage would stop the run after the earlier stages trained)."""
    freezes = [stage for stage in recipe.stages if stage.guard is not None and stage.guard.method == "freeze"]
    config = base_config_if_present(recipe.model) if freezes else None
    if config is None:
        return
    depth = config.get("num_hidden_layers")
    if isinstance(depth, int):
        for stage in freezes:
            stage.guard.check_depth(depth, stage.name)
    named = [stage for stage in freezes if stage.guard.modules]
    layer = _empty_decoder_layer(config) if named else None
    if layer is not None:
        from cpt.guards.freeze import layer_submodule

        for stage in named:
            for name in stage.guard.modules:
                layer_submodule(layer, name, stage.name)


def _empty_decoder_layer(config: dict):
    """The first decoder layer of the model `config` describes, built on the meta device (no memory, no weights
    read); None for a model type transformers does not know without remote code, or without a decoder stack
    (the guard then refuses at the stage's start, as before)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from cpt.guards.freeze import decoder_layers

    settings = {key: value for key, value in config.items() if key != "model_type"}
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(AutoConfig.for_model(config.get("model_type", ""), **settings))
        layers = decoder_layers(model, "")
    except (ValueError, KeyError, TypeError, UserError):
        return None
    return layers[0] if len(layers) else None


def _local_base(recipe: Recipe) -> list[Path]:
    """The base model folder when the recipe names a local one (the only checkpoint that exists at plan)."""
    folder = Path(recipe.model.name_or_path).expanduser()
    return [folder] if folder.is_dir() else []


def _check_stage_extras(stage, launch: Launch) -> None:
    """The stage's guards under this launch (guards/support.py), and what a stage names beyond its data:
    model folders (a reference), and what its spec checks itself (a grpo stage's rewards and rollout backend)."""
    where = f"stage {stage.name}"
    for refused in launch_refusals(stage, launch):
        raise UserError(f"{where}: {refused}")
    for path in stage.merge.held_out.values() if stage.merge is not None else ():
        check_source(DataSource(path=path), EVAL_SHAPES)  # the merge guard's held-out rows: {prompt, answer}
    for key, folder in stage.named_models().items():
        if not (Path(folder) / "config.json").is_file():
            raise UserError(f"{where}: {key} {folder} is not a model folder (expected a config.json there)")
    stage.check_names()
    text = getattr(stage.guard, "text", None)
    if text is not None:
        _check_passages(Path(text), f"{where}: guard.text")


def _check_passages(path: Path, key: str) -> None:
    """A kl_anchor or gpm guard's text file: it exists and holds a passage (one per line)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{key}: cannot read {path} ({error.__class__.__name__}); expected a UTF-8 text file, "
                        "one passage per line") from None
    if not any(line.strip() for line in lines):
        raise UserError(f"{key}: {path} holds no passage; expected a UTF-8 text file, one passage per line")


def stage_sources(stage) -> list[tuple[DataSource, tuple]]:
    """The data sources a stage reads, each with the row shapes it accepts (a replay file included, so it
    is checked before the run and its content is part of the stage's identity)."""
    sources = [(source, stage.data_shapes) for source in stage.training_sources()]
    replay = getattr(stage, "replay", None)
    if replay is not None and replay.path is not None:
        sources.append((DataSource(path=replay.path), stage.replay_shapes))
    rehearsal = getattr(stage, "rehearsal", None)
    if rehearsal is not None and rehearsal.prompts.path is not None:
        sources.append((DataSource(path=rehearsal.prompts.path), PROMPT_ROW_SHAPES))
    return sources
