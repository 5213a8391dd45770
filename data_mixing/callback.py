"""The TrainerCallback that drives learned mixing inside a Hugging Face / TRL trainer.

    mixing = MixingCallback(stream, learner, HeldOutEvaluator(domains, 8), update_every=20,
                            sequences_per_step=batch * grad_accum * processes, trajectory_path=stage_dir / "mixture_weights.json")
    trainer = Trainer(..., train_dataset=stream, callbacks=[mixing]); mixing.attach(trainer)
    mixing.load_state_dict(json.load(open(checkpoint / MIXTURE_STATE)))   # when resuming (+ args.ignore_data_skip)

Every `update_every` optimizer steps it scores the model on the held-out sequences of the domains
the learner asks for (`learner.to_score()`: every domain for DoReMi, the one domain ODM's bandit
drew), hands the losses (DoReMi: the per-token clipped excess over the reference) to the learner
and the learner's weights to the stream. Why held-out batches and not the training batches' losses:
(1) no trainer subclass or compute_loss hook is needed, the callback sees the model; (2) a domain
can be measured whatever its weight, also one whose weight has fallen so low that training batches
would rarely show it; (3) the same sequences each time, so a change is the model's, not the batch's;
(4) DoReMi's per-token reference losses on a fixed set are computed once, and with the default
reference (the stage's starting model) they are simply the token losses at step 0, so no second
model is kept in memory; they are saved with the mixing state, since a resumed run no longer has
that model. The cost is a forward pass over `held_out_sequences` sequences per scored domain every
`update_every` steps.

On save it writes `mixture_state.json` (stream, learner, DoReMi reference, trajectory) into the trainer's
`checkpoint-N` folder, before the runner marks the checkpoint complete (callbacks run in the
order added; the runner adds its commit callback at train time, after this one). The stream's
state is taken as of the sequences the trainer has *consumed*: global_step x
`sequences_per_step`, not what accelerate's loaders have read ahead.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

from data_mixing.held_out import HeldOutEvaluator
from data_mixing.learners import Learner
from data_mixing.stream import MixtureStream
from data_mixing.sync import rank_and_world
from eval.files import atomic_write_json

MIXTURE_STATE = "mixture_state.json"


class MixingCallback(TrainerCallback):
    """Learns the stream's weights from held-out losses; saves and restores the whole mixing state."""

    def __init__(self, stream: MixtureStream, learner: Learner, evaluator: HeldOutEvaluator, update_every: int,
                 sequences_per_step: int, trajectory_path: Path | None = None,
                 fixed: dict[str, float] | None = None, reference_model: Callable[[], object] | None = None):
        self.stream, self.learner, self.evaluate = stream, learner, evaluator
        self.update_every, self.sequences_per_step = update_every, sequences_per_step
        self.trajectory_path = trajectory_path
        self.fixed = fixed or {}  # domains held at a fixed share (replay), outside the learner
        self.reference_model = reference_model  # loads a reference other than the stage's starting model
        self.reference_tokens: torch.Tensor | None = None  # DoReMi: the reference's per-token held-out losses
        self.trajectory: list[dict] = []
        self._trainer = None
        # The trainer reads ahead by a batch (x processes when rank 0 fetches for all); keep plenty.
        stream.keep_history(max(4096, 4 * sequences_per_step))

    def attach(self, trainer) -> None:
        """Log through `trainer` (so trackers see the weights) and score under its autocast."""
        self._trainer = trainer

    # -- training events ----------------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.learner.needs_reference and self.reference_tokens is None:
            reference = self.reference_model() if self.reference_model else model
            # Held as float32 values, as the checkpoint stores them: a resumed run uses the same numbers.
            self.reference_tokens = self.evaluate.token_losses(reference, **self._autocast()).float().double()
            del reference  # a separately loaded reference is freed here
        if not self.trajectory:
            self._record(state.global_step, None)
        self._write_trajectory()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self._check_read_ahead(state.global_step)
        if state.global_step % self.update_every or not self.evaluate:
            return
        names = self.learner.to_score()
        losses, excess = self.evaluate.score(model, domains=names, reference=self.reference_tokens, **self._autocast())
        signals = excess if self.learner.needs_reference else losses
        learned = self.learner.update({n: signals[n] for n in names})
        self.stream.set_weights(compose(learned, self.fixed))
        self._record(state.global_step, losses, excess)
        self._write_trajectory()
        if self._trainer is not None:
            should_log = control.should_log  # Trainer.log clears it: the step's loss would go unlogged
            self._trainer.log(self._log_entry(self.trajectory[-1]))
            control.should_log = should_log

    def on_train_end(self, args, state, control, **kwargs):
        if self.trajectory[-1]["step"] != state.global_step:  # static weights: close the curve
            self._record(state.global_step, None)
            self._write_trajectory()

    def on_save(self, args, state, control, **kwargs):
        if rank_and_world()[0] == 0:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            atomic_write_json(folder / MIXTURE_STATE, self.state_dict(state.global_step))

    def _check_read_ahead(self, global_step: int) -> None:
        """The saved position is computed, not observed: fail loudly if the trainer read far more."""
        ahead = self.stream.position - global_step * self.sequences_per_step
        if self.stream.position and not 0 <= ahead <= 2 * self.sequences_per_step:  # 0: a rank not reading
            raise RuntimeError(
                f"mixture stream: at step {global_step} the trainer has read {self.stream.position} sequences, "
                f"expected {global_step} x {self.sequences_per_step} plus at most a batch read ahead; "
                "batches were skipped or the batch layout is not what the stream was told"
            )

    # -- records ------------------------------------------------------------------------------
    def _autocast(self) -> dict:
        """Score under the trainer's autocast when attached (bf16 runs score as they train)."""
        return {"autocast": self._trainer.autocast_smart_context_manager} if self._trainer is not None else {}

    def _record(self, step: int, losses: dict[str, float] | None, excess: dict[str, float] | None = None) -> None:
        entry = {"step": step, "weights": self.stream.weights}
        if losses:
            entry["held_out_loss"] = losses
        if excess:
            entry["held_out_excess"] = excess
        average = getattr(self.learner, "average", None)
        if losses and average is not None:  # DoReMi's output: the mean of its weights over the updates
            entry["average_weights"] = dict(zip(self.learner.names, average.tolist()))
        self.trajectory.append(entry)

    @staticmethod
    def _log_entry(entry: dict) -> dict[str, float]:
        logs = {f"mixture/weight/{n}": w for n, w in entry["weights"].items()}
        logs.update({f"mixture/held_out_loss/{n}": v for n, v in entry.get("held_out_loss", {}).items()})
        logs.update({f"mixture/held_out_excess/{n}": v for n, v in entry.get("held_out_excess", {}).items()})
        return logs

    def _write_trajectory(self) -> None:
        if self.trajectory_path is not None and rank_and_world()[0] == 0:
            atomic_write_json(self.trajectory_path, self.trajectory)

    # -- state --------------------------------------------------------------------------------
    def state_dict(self, global_step: int) -> dict:
        """JSON-serialisable mixing state as of optimizer step `global_step` (what was consumed)."""
        consumed = global_step * self.sequences_per_step
        return {
            "global_step": global_step,
            "consumed_sequences": consumed,
            "consumed_per_domain": self.stream.consumed_per_domain(consumed),
            "stream": self.stream.state_dict(consumed),
            "learner": self.learner.state_dict(),
            "reference_token_losses": encode_table(self.reference_tokens),
            "trajectory": self.trajectory,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from a `state_dict` (e.g. a checkpoint's mixture_state.json)."""
        if state["consumed_sequences"] != state["global_step"] * self.sequences_per_step:
            raise ValueError(
                f"mixture state was saved with {state['consumed_sequences'] // max(state['global_step'], 1)} "
                f"sequences per step, this run takes {self.sequences_per_step}: batch size, gradient "
                "accumulation or the number of processes changed, so the data position cannot be resumed"
            )
        self.stream.load_state_dict(state["stream"])
        self.learner.load_state_dict(state["learner"])
        self.reference_tokens = decode_table(state.get("reference_token_losses"))
        self.trajectory = [e for e in state["trajectory"] if e["step"] <= state["global_step"]]


def compose(learned: dict[str, float], fixed: dict[str, float]) -> dict[str, float]:
    """The stream's weights: the learner's, scaled into the share the fixed-share domains leave."""
    free = 1.0 - sum(fixed.values())
    return {**{n: free * w for n, w in learned.items()}, **fixed}


def encode_table(table: torch.Tensor | None) -> dict | None:
    """A per-token loss table as JSON: float32 bytes in base64, exact (the losses are float32 values)
    and a quarter the size of decimal text."""
    if table is None:
        return None
    data = np.ascontiguousarray(table.numpy(), dtype="<f4")
    return {"shape": list(data.shape), "float32_base64": base64.b64encode(data.tobytes()).decode("ascii")}


def decode_table(saved: dict | None) -> torch.Tensor | None:
    """The inverse of `encode_table`, as float64."""
    if saved is None:
        return None
    data = np.frombuffer(base64.b64decode(saved["float32_base64"]), dtype="<f4").reshape(saved["shape"])
    return torch.from_numpy(data.astype(np.float64))


def read_mixture_state(checkpoint: Path) -> dict | None:
    """The mixing state saved in a trainer checkpoint folder, or None if it has none."""
    path = Path(checkpoint) / MIXTURE_STATE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
