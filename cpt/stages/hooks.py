"""Everything cpt adds to a stage's trainer, in one ordered list.

    hooks = StageHooks.for_stage(ctx, guard, check, stage_callbacks=[mixing])
    trainer = hooked_trainer_class(SFTTrainer)(model=model, cpt_hooks=hooks, args=..., ...)
    trainer.train(...); hooks.stop.stopped_at; hooks.guard

TRL's trainers call their callbacks in the order they were added, at each event: the library's own first,
then ours, in the order of this list. The order is ours to keep,
and it matters, so it is written here once, not left to where each `add_callback` happens to be:

1. the stage's own callbacks (a cpt stage's mixing callback): they write their state into a checkpoint
   folder at `on_save`, which must happen before CommitCheckpoints marks that folder COMPLETE;
2. BadBatchCheck: skips a step whose loss or gradient is not finite, before the optimizer uses it;
3. the guard's callbacks (OSF's projection after each optimizer step);
4. CommitCheckpoints: marks a saved checkpoint complete, once every callback before it wrote into it;
5. AnnounceResume, on a resumed stage;
6. CheckpointOnStop: last, so that a stop asked for during a step saves that step after all the others.

What needs the built trainer (a guard's reference device or vLLM engine, the mixing callback's logging) is
given it by the trainer's own constructor, in the list's order: the guard first, then the stage's callbacks.
We add this on top of TRL because the library has callbacks but no notion of "attach once built".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cpt.core.checkpoints import AnnounceResume, CommitCheckpoints
from cpt.core.preemption import CheckpointOnStop
from cpt.guards.base import Guard, GuardedLoss
from cpt.stages.bad_batches import BadBatchCheck, RecordsLoss


@dataclass
class StageHooks:
    """The callbacks of one stage's trainer in the order it calls them, and the objects behind them."""

    check: BadBatchCheck
    guard: Guard | None
    stop: CheckpointOnStop
    callbacks: list[Any]  # the trainer's callbacks, in order (the module docstring says why this order)
    needs_trainer: list[Any] = field(default_factory=list)  # objects with attach(trainer), called in order

    @classmethod
    def for_stage(cls, ctx, guard: Guard | None, check: BadBatchCheck, stage_callbacks: list | None = None):
        stage_callbacks = list(stage_callbacks or [])
        stop = CheckpointOnStop()
        callbacks = [
            *stage_callbacks,
            check,
            *(guard.callbacks() if guard is not None else []),
            CommitCheckpoints(ctx.checkpoint_dir, ctx.spec.keep_checkpoints),
            *([AnnounceResume(ctx.spec.name, ctx.resume_from)] if ctx.resume_from else []),
            stop,
        ]
        needs_trainer = [hook for hook in (guard, *stage_callbacks) if hasattr(hook, "attach")]
        return cls(check=check, guard=guard, stop=stop, callbacks=callbacks, needs_trainer=needs_trainer)

    def attach_all(self, trainer) -> None:
        for hook in self.needs_trainer:
            hook.attach(trainer)


def hooked_trainer_class(trainer_cls: type) -> type:
    """`trainer_cls` taking `cpt_hooks=`: our callbacks in their order, the guard's loss term (GuardedLoss) and
    the micro-batch losses handed to the bad-batch check (RecordsLoss). Both mixins read the hooks from the
    instance; with no guard (or one without a penalty) GuardedLoss is the trainer's own loss."""

    class Hooked(RecordsLoss, GuardedLoss, trainer_cls):
        def __init__(self, *args, cpt_hooks: StageHooks, **kwargs):  # no `callbacks=`: the list is the order
            self.cpt_hooks = cpt_hooks
            self._guard_log: list[float] = []  # the penalty's values since the last log (this trainer's own)
            super().__init__(*args, **kwargs)
            # After the library's own (transformers' progress printer, TRL's reference sync), in our order.
            for callback in cpt_hooks.callbacks:
                self.add_callback(callback)
            cpt_hooks.attach_all(self)

    Hooked.__name__ = Hooked.__qualname__ = f"Hooked{trainer_cls.__name__}"
    return Hooked
