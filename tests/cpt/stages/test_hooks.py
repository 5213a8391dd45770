"""A stage's trainer gets cpt's callbacks in one ordered list (cpt/stages/hooks.py): the stage's own
(mixing) first, then the bad-batch check, the guard's, the checkpoint commit, the resume notice and the stop;
what needs the built trainer gets it in that order; and a checkpoint is committed only after the stage's
own callback has written into it (a real transformers Trainer, two steps of the toy model)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch
from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

from cpt.core.checkpoints import AnnounceResume, CommitCheckpoints
from cpt.core.preemption import CheckpointOnStop
from cpt.guards.base import Guard
from cpt.stages.bad_batches import BadBatchCheck
from cpt.stages.hooks import StageHooks, hooked_trainer_class


class StateWriter(TrainerCallback):
    """Stands where the mixing callback stands: writes its state into each checkpoint folder at on_save."""

    def __init__(self, events: list):
        self.events = events

    def attach(self, trainer):
        self.events.append(("attach", "stage", trainer))

    def on_save(self, args, state, control, **kwargs):
        folder = f"{args.output_dir}/checkpoint-{state.global_step}"
        self.events.append(("saved", "complete already" if _complete(folder) else "not yet complete"))
        return control


class ProjectionGuard(Guard):
    """A guard with a callback and a need for the built trainer (as OSF has), and no loss term."""

    name = "test"

    def __init__(self, events: list):
        self.events = events
        self.projection = TrainerCallback()

    def attach(self, trainer):
        self.events.append(("attach", "guard", trainer))

    def callbacks(self):
        return [self.projection]


def _complete(folder: str) -> bool:
    return (Path(folder) / "COMPLETE").exists()


def _ctx(tmp_path, resume_from=None):
    spec = SimpleNamespace(name="a", keep_checkpoints=2)
    return SimpleNamespace(spec=spec, checkpoint_dir=tmp_path / "checkpoints", resume_from=resume_from)


def test_the_hook_list_is_in_the_documented_order(tmp_path):
    events = []
    stage, guard = StateWriter(events), ProjectionGuard(events)
    check = BadBatchCheck("a", 0, tmp_path)
    hooks = StageHooks.for_stage(_ctx(tmp_path, resume_from=tmp_path / "checkpoint-5"), guard, check, [stage])
    assert [type(c) for c in hooks.callbacks] == [StateWriter, BadBatchCheck, TrainerCallback, CommitCheckpoints,
                                                  AnnounceResume, CheckpointOnStop]
    assert hooks.callbacks[2] is guard.projection and hooks.callbacks[-1] is hooks.stop
    assert hooks.needs_trainer == [guard, stage]
    fresh = StageHooks.for_stage(_ctx(tmp_path), None, check)
    assert [type(c) for c in fresh.callbacks] == [BadBatchCheck, CommitCheckpoints, CheckpointOnStop]


def test_a_real_trainer_calls_them_in_that_order_and_commits_after_the_stage_wrote(tmp_path, toy_dir):
    events = []
    stage, guard = StateWriter(events), ProjectionGuard(events)
    ctx = _ctx(tmp_path)
    hooks = StageHooks.for_stage(ctx, guard, BadBatchCheck("a", 0, tmp_path), [stage])
    model = AutoModelForCausalLM.from_pretrained(toy_dir / "model", dtype=torch.float32)
    ids = torch.randint(0, model.config.vocab_size, (4, 12), generator=torch.Generator().manual_seed(0))
    rows = [{"input_ids": row, "labels": row} for row in ids]
    args = TrainingArguments(output_dir=str(ctx.checkpoint_dir), max_steps=2, save_steps=1, per_device_train_batch_size=2,
                             report_to="none", use_cpu=True, disable_tqdm=True, save_strategy="steps")
    trainer = hooked_trainer_class(Trainer)(model=model, args=args, train_dataset=rows, cpt_hooks=hooks)

    ours = [c for c in trainer.callback_handler.callbacks if c in hooks.callbacks or c is stage]
    assert ours == hooks.callbacks  # none dropped, none moved, none added twice
    assert trainer.callback_handler.callbacks[-len(ours):] == ours  # after transformers' own defaults
    assert events == [("attach", "guard", trainer), ("attach", "stage", trainer)]
    trainer.train()
    assert [e for e in events if e[0] == "saved"] == [("saved", "not yet complete")] * 2
    assert all(_complete(str(ctx.checkpoint_dir / f"checkpoint-{step}")) for step in (1, 2))
    assert hooks.stop.stopped_at is None and trainer.cpt_hooks is hooks
