"""Anti-forgetting guards, one per stage (`guard:` in the recipe; guards/config.py lists them):

    olora      a new LoRA per stage, orthogonal to the earlier stages' (olora.py)
    osf        PEFT's orthogonal subspace fine-tuning, with an adaptive preserved rank (osf.py, osf_ranks.py)
               and over a sequence of stages (osf_sequence.py)
    kl_anchor  KL or L2 to the stage's starting model, for sft and cpt (kl_anchor.py)
    freeze     the input embeddings and the bottom decoder layers keep their weights, or all but a share (freeze.py)
    gpm        each linear layer keeps its output on the inputs of a protected text (gpm.py)

A guard's memory of earlier stages travels with every later model folder (travelling.py).
Replay, the data-side guard, is the stage's `replay:` key (data_mixing). A stage builds its trainer
through `cpt.stages.training.build_trainer`, which applies the guard via base.py's extension points.
Try one: `cpt run recipes/quickstart.yaml stages.sft_sorting.replay='{stages: [sft_date_format], ratio: 0.2}'`,
or compare them all: `python benchmarks/forgetting.py --setting toy`.
"""

from __future__ import annotations

from cpt.data.earlier import earlier_rows

# Nothing heavy at import: recipe validation (`cpt plan`) imports guards/config.py through this package.


def make_guard(ctx, tokenizer, load_model):
    """The stage's guard (a guards.base.Guard), ready to prepare the starting model; None when the recipe sets none."""
    spec = ctx.spec.guard
    if spec is None:
        return None
    if spec.method == "olora":
        from cpt.guards.olora import OLoRAGuard

        return OLoRAGuard(spec, ctx.input_model)
    if spec.method == "osf":
        from cpt.guards.osf import OSFGuard

        return OSFGuard(spec, tokenizer, _earlier_sample(ctx) if spec.adaptive else None, ctx.input_model, ctx.spec.name)
    if spec.method == "freeze":
        from cpt.guards.freeze import FreezeGuard

        return FreezeGuard(spec, ctx.spec.name)
    if spec.method == "gpm":
        from cpt.guards.gpm import GPMGuard

        return GPMGuard(spec)
    from cpt.guards.kl_anchor import KLAnchorGuard

    return KLAnchorGuard(spec, lambda: load_model(ctx, ctx.input_model))  # loaded only for the kl distance


def _earlier_sample(ctx) -> list[str]:
    """The adaptive OSF option's rows of earlier data, as text, a fixed sample for the seed."""
    adaptive = ctx.spec.guard.adaptive
    rows = earlier_rows(ctx, adaptive, ("text",), "guard.adaptive")  # prompt + completion, or text
    return rows.shuffle(seed=ctx.seed).select(range(min(adaptive.rows, len(rows))))["text"]
