"""Weight learners: turn per-domain losses into new mixture weights, every `update_every` steps.

    learner = make_learner("doremi", ["general", "code"], {"general": 0.5, "code": 0.5}, step_size=1.0)
    learner.set_reference({"general": 2.1, "code": 3.0})      # doremi only: the reference model's losses
    weights = learner.update({"general": 2.0, "code": 3.4})   # -> {"general": ..., "code": ...}
    saved = learner.state_dict(); learner.load_state_dict(saved)   # JSON-serialisable

- `static`: the recipe's weights, unchanged.
- `doremi`: online DoReMi (Xie et al. 2023, "DoReMi: Optimizing Data Mixtures Speeds Up Language
  Model Pretraining", Algorithm 1): excess loss = max(loss - reference loss, 0) per domain,
  exponentiated-gradient step `log a += step_size * excess`, normalise, then smooth towards
  uniform: `w = (1 - smoothing) * a + smoothing / K`. The paper trains a proxy model and reuses
  the averaged weights; here the weights steer the training run itself, as its online variant.
- `odm`: Online Data Mixing (Albalak et al. 2023, "Efficient Online Data Mixing For Language Model
  Pre-Training", Algorithm 1): EXP3 over domains. Reward = the domain's loss divided by the
  probability it was sampled with (importance weighting), kept as a moving average
  `R = decay * R + (1 - decay) * loss / p`; policy `p = (1 - K e) softmax(e_prev * R) + e` with
  `e_t = min(1/K, sqrt(ln K / (K t)))` (exploration and step size at once), or a fixed `step_size`.

Where the losses come from is the caller's business (data_mixing/callback.py: held-out batches).
All arithmetic is in float64 numpy, so every rank given the same losses computes the same weights.
"""

from __future__ import annotations

import math

import numpy as np

LEARNERS = ("static", "doremi", "odm")


class Learner:
    """Base: holds the domain names and the current weights."""

    needs_reference = False

    def __init__(self, names: list[str], weights: dict[str, float]):
        self.names = list(names)
        values = np.asarray([weights[n] for n in names], dtype=np.float64)
        self.weights = values / values.sum()
        self.updates = 0

    def current(self) -> dict[str, float]:
        return dict(zip(self.names, self.weights.tolist()))

    def update(self, losses: dict[str, float]) -> dict[str, float]:
        """Take one step from per-domain losses (mean token loss); return the new weights."""
        self.updates += 1
        self.weights = self._step(np.asarray([losses[n] for n in self.names], dtype=np.float64))
        return self.current()

    def _step(self, losses: np.ndarray) -> np.ndarray:
        return self.weights

    def state_dict(self) -> dict:
        return {"kind": type(self).__name__, "names": self.names, "weights": self.weights.tolist(),
                "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != type(self).__name__ or state.get("names") != self.names:
            raise ValueError(f"learner state is for {state.get('kind')} over {state.get('names')}, "
                             f"not {type(self).__name__} over {self.names}")
        self.weights = np.asarray(state["weights"], dtype=np.float64)
        self.updates = int(state["updates"])


class StaticLearner(Learner):
    """Fixed weights."""


class DoReMiLearner(Learner):
    """Online DoReMi: exponentiated gradient on the clipped excess loss over a reference model."""

    needs_reference = True

    def __init__(self, names, weights, step_size: float = 1.0, smoothing: float = 1e-3):
        super().__init__(names, weights)
        self.step_size, self.smoothing = step_size, smoothing
        self.log_alpha = np.log(np.maximum(self.weights, 1e-300))  # unsmoothed weights, in log space
        self.reference: np.ndarray | None = None
        self.weights = self._smoothed()

    def set_reference(self, losses: dict[str, float]) -> None:
        """The reference model's per-domain losses on the same held-out data."""
        self.reference = np.asarray([losses[n] for n in self.names], dtype=np.float64)

    def _step(self, losses: np.ndarray) -> np.ndarray:
        if self.reference is None:
            raise RuntimeError("doremi: set_reference() must be called before update()")
        excess = np.maximum(losses - self.reference, 0.0)
        self.log_alpha = self.log_alpha + self.step_size * excess
        self.log_alpha -= np.logaddexp.reduce(self.log_alpha)  # normalise
        return self._smoothed()

    def _smoothed(self) -> np.ndarray:
        return (1 - self.smoothing) * np.exp(self.log_alpha) + self.smoothing / len(self.names)

    def state_dict(self) -> dict:
        reference = None if self.reference is None else self.reference.tolist()
        return {**super().state_dict(), "log_alpha": self.log_alpha.tolist(), "reference": reference}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.log_alpha = np.asarray(state["log_alpha"], dtype=np.float64)
        self.reference = None if state["reference"] is None else np.asarray(state["reference"], dtype=np.float64)


class ODMLearner(Learner):
    """Online Data Mixing: EXP3 with importance-weighted loss rewards. Starts uniform, as the paper."""

    def __init__(self, names, weights=None, step_size: float | None = None, reward_decay: float = 0.9):
        super().__init__(names, {n: 1.0 for n in names})
        if step_size is not None and not 0 < step_size <= 1.0 / len(names):
            raise ValueError(f"odm's rate must be in (0, 1/K] for K={len(names)} domains, got {step_size}")
        self.fixed_rate, self.decay = step_size, reward_decay
        self.rewards = np.zeros(len(names))

    def _rate(self, t: int) -> float:
        """e_t: the exploration floor and the step size of the policy used after update t-1."""
        k = len(self.names)
        return self.fixed_rate if self.fixed_rate is not None else min(1.0 / k, math.sqrt(math.log(k) / (k * t)))

    def _step(self, losses: np.ndarray) -> np.ndarray:
        # The weights in effect are the probabilities the losses' domains were drawn with.
        self.rewards = self.decay * self.rewards + (1 - self.decay) * losses / self.weights
        scores = self._rate(self.updates) * self.rewards
        policy = np.exp(scores - scores.max())
        explore = self._rate(self.updates + 1)
        return (1 - len(self.names) * explore) * policy / policy.sum() + explore

    def state_dict(self) -> dict:
        return {**super().state_dict(), "rewards": self.rewards.tolist()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.rewards = np.asarray(state["rewards"], dtype=np.float64)


def make_learner(kind: str, names: list[str], weights: dict[str, float], step_size: float | None = None,
                 smoothing: float = 1e-3, reward_decay: float = 0.9) -> Learner:
    """The learner named `kind` (one of LEARNERS) over domains `names`, starting from `weights`."""
    if kind == "static":
        return StaticLearner(names, weights)
    if kind == "doremi":
        return DoReMiLearner(names, weights, 1.0 if step_size is None else step_size, smoothing)
    if kind == "odm":
        return ODMLearner(names, weights, step_size, reward_decay)
    raise ValueError(f"unknown learner '{kind}' (expected one of: {', '.join(LEARNERS)})")
