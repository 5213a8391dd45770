"""`cpt plan RECIPE`: validate a recipe and show what would run, without running anything.

For each stage: its kind, data, the model it starts from, where it writes, its reference model
(the starting model, used by KL/DPO terms) and what a rerun would do (train, resume or skip).
"""

from __future__ import annotations

from cpt.core.layout import RunLayout
from cpt.core.manifest import DONE, RUNNING, Manifest
from cpt.core.precision import choose_precision, count_parameters
from cpt.guards.travelling import read_osf_record
from cpt.models import base_folder_if_present
from cpt.recipe.schema import Recipe
from cpt.runner.preflight import stage_sources


def describe_plan(recipe: Recipe) -> str:
    """The plan as text (the caller prints it)."""
    run = RunLayout.of(recipe.run.output_dir, recipe.run.name)
    run_dir = run.dir
    manifest = Manifest.load(run_dir)
    lines = [f"run {recipe.run.name} -> {run_dir}", f"base model: {recipe.model.name_or_path}", _launch_line(recipe)]
    previous = f"base ({recipe.model.name_or_path})"
    base_folder = base_folder_if_present(recipe.model)
    base_params = count_parameters(base_folder)
    osf_before = len(read_osf_record(base_folder))  # OSF stages the base went through
    for index, stage in enumerate(recipe.stages):
        output = run.stage(stage.name).model
        data = ", ".join(src.describe() for src, _ in stage_sources(stage))
        lines += [
            f"[{index + 1}] {stage.name} ({stage.kind}{', LoRA r=' + str(stage.peft.r) if stage.peft else ''})",
            f"    data:      {data}",
            f"    input:     {previous}",
            f"    output:    {output}",
            f"    reference: {stage.reference_model() or previous}{stage.plan_note()}",
        ]
        lines.append(f"    precision: {choose_precision(stage.train, base_params).describe()}")
        guards = _guards(stage, osf_before)
        osf_before += getattr(stage.guard, "method", None) == "osf"
        if guards:
            lines.append(f"    guards:    {guards}")
        lines.append(f"    status:    {_status(manifest, stage.name)}")
        previous = str(output)
    if recipe.eval:
        names = ", ".join(t.name + (" (general)" if t.general else "") for t in recipe.eval.tasks)
        lines.append(
            f"eval (lm-eval, {recipe.eval.backend} backend) after {'base and ' if recipe.eval.base else ''}"
            f"each stage: {names}; then the report in {run.report}"
        )
    return "\n".join(lines)


def _guards(stage, osf_before: int) -> str:
    """The stage's anti-forgetting guard and replay, as recipe settings (empty when none); for an OSF
    guard that grows, the share of this stage (`osf_before` earlier OSF stages, from the base's record)."""
    parts = []
    guard = stage.guard
    if guard is not None:
        plan_settings = getattr(guard, "plan_settings", None)
        settings = plan_settings() if plan_settings else guard.model_dump(exclude={"method"}, exclude_none=True)
        parts.append(f"{guard.method} {settings}")
        if getattr(guard, "grow", None) is not None:
            share = "per layer" if guard.adaptive else f"{guard.preserved_at(guard.preserved, osf_before):g}"
            parts[-1] += f" (OSF stage {osf_before + 1} of the model: preserved {share})"
    replay = getattr(stage, "replay", None)
    if replay is not None:
        parts.append(_replay_note(replay))
    if stage.merge is not None:
        parts.append(f"merge within {stage.merge.budget:g} points {stage.merge.model_dump(exclude={'budget'})}")
    rehearsal = getattr(stage, "rehearsal", None)
    if rehearsal is not None:
        parts.append(f"rehearsal {rehearsal.ratio:.0%}: {rehearsal.rows} prompts ({rehearsal.prompts.describe()}) "
                     "answered by the starting model")
    parts += _own_share_note(stage, [part.ratio for part in (replay, rehearsal) if part is not None])
    return "; ".join(parts)


def _replay_note(replay) -> str:
    """`replay 50% of a, b`; with weights, each source's share of the stage's rows: `replay 50%: a 17%, b 33%`."""
    names = replay.source_names()
    shown = [replay.path if name == "path" else name for name in names]
    if replay.weights is None:
        return f"replay {replay.ratio:.0%} of {', '.join(shown)}"
    return f"replay {replay.ratio:.0%}: " + ", ".join(f"{name} {share:.1%}"
                                                       for name, share in zip(shown, replay.shares(names)))


def _own_share_note(stage, shares: list[float]) -> list[str]:
    """Replayed and rehearsed rows take their share of a stage's steps when max_steps caps it: on SmolLM2 a 50%
    share with the same steps learned the new task less than the same share on top (docs/forgetting.md)."""
    steps = stage.train.get("max_steps")
    own = 1.0 - sum(shares)
    if not shares or not isinstance(steps, int) or steps <= 0 or own <= 0:
        return []
    full = round(steps / own)
    return [f"the stage's own data gets {own:.0%} of its {steps} steps (max_steps {full} gives it all {steps})"]


def _status(manifest: Manifest | None, name: str) -> str:
    record = manifest.stages.get(name) if manifest else None
    if record is None:
        return "not started"
    if record.status == DONE:
        return f"done (step {record.global_step}); skipped on rerun unless its config or an earlier stage changed"
    if record.status == RUNNING:
        return "interrupted; resumes from its last complete checkpoint"
    return "not started"


def _launch_line(recipe: Recipe) -> str:
    launch = recipe.launch
    if launch.num_processes == 1 and not launch.deepspeed:
        return "launch: cpt run RECIPE"
    deepspeed = f" --use_deepspeed --zero_stage {launch.deepspeed[-1]}" if launch.deepspeed else ""
    return f"launch: accelerate launch --num_processes {launch.num_processes}{deepspeed} -m cpt run RECIPE"
