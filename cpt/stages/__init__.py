"""Stage kinds: each a thin adapter from its recipe section to a TRL trainer.

`STAGE_RUNNERS[kind](ctx)` trains one stage; specs live beside each runner (<kind>_config.py).
"""

from __future__ import annotations


def _run_cpt(ctx):
    from cpt.stages.cpt import run

    return run(ctx)


def _run_sft(ctx):
    from cpt.stages.sft import run

    return run(ctx)


def _run_dpo(ctx):
    from cpt.stages.dpo import run

    return run(ctx)


def _run_grpo(ctx):
    from cpt.stages.grpo import run

    return run(ctx)


STAGE_RUNNERS = {"cpt": _run_cpt, "sft": _run_sft, "dpo": _run_dpo, "grpo": _run_grpo}
