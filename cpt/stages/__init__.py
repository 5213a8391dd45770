"""Stage kinds: each a thin adapter from its recipe section to a TRL trainer.

`registry.STAGE_RUNNERS[kind](ctx)` trains one stage; each kind's spec lives beside its runner
(`<kind>_config.py` next to `<kind>.py`) and is one line of `registry.STAGE_SPECS`.
"""
