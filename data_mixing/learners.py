"""Weight learners: turn per-domain held-out signals into new mixture weights, every `update_every` steps.

    learner = make_learner("odm", ["general", "code"], {"general": 0.5, "code": 0.5}, seed=0)
    names = learner.to_score()                     # the domains whose held-out loss the next update needs
    weights = learner.update({n: held_out_loss[n] for n in names})   # -> {"general": ..., "code": ...}
    saved = learner.state_dict(); learner.load_state_dict(saved)     # JSON-serialisable

- `static`: the recipe's weights, unchanged.
- `doremi`: DoReMi (Xie et al. 2023, "DoReMi: Optimizing Data Mixtures Speeds Up Language Model
  Pretraining", Algorithm 1). Its input is each domain's excess loss, clipped token by token and
  averaged over the domain's tokens: `lambda_i = sum_x sum_j max(l_j(x) - l_ref,j(x), 0) / sum_x |x|`
  (held_out.py computes it against the reference model's per-token losses). Step:
  `a' = a_{t-1} * exp(step_size * lambda)`, normalised, `a_t = (1 - smoothing) a' + smoothing / K`;
  the smoothed `a_t` is both the stream's weights and the next step's start (as the paper and its
  reference implementation). `a_0` is the recipe's weights. `average` is the mean of `a_1 .. a_t`, the
  paper's output (what a proxy run hands a larger run); here the weights also steer this run itself.
- `odm`: Online Data Mixing (Albalak et al. 2023, "Efficient Online Data Mixing For Language Model
  Pre-Training", Algorithm 1), the EXP3 bandit with moving-average rewards. At update t one domain
  `i` is drawn from the policy `p_t` in effect (`to_score()`, seeded by (seed, t): every rank and a
  resumed run draw the same); its held-out loss `L_i` is the reward, importance-weighted and
  smoothed for that domain only, `R_i = reward_decay * R_i + (1 - reward_decay) * L_i / p_t(i)`;
  then `p_{t+1} = (1 - K e_{t+1}) softmax(e_t R) + e_{t+1}` with `e_t = min(1/K, sqrt(ln K / (K t)))`
  (exploration and step size at once), or a fixed `step_size` for both. It starts uniform. The paper
  pulls an arm per training batch and rewards it with that batch's training loss; here the pull is
  the drawn domain's held-out sequences, scored by the callback (data_mixing/callback.py says why).

All arithmetic is in float64 numpy, so every rank given the same losses computes the same weights.
"""

from __future__ import annotations

import math

import numpy as np

LEARNERS = ("static", "doremi", "odm")
STATE_FORMAT = 2  # 1: doremi kept unsmoothed log-weights, odm scored every domain (before the papers' forms)


class Learner:
    """Base: holds the domain names and the current weights; updates from every domain's signal."""

    needs_reference = False  # doremi: update() takes excess losses over a reference model

    def __init__(self, names: list[str], weights: dict[str, float]):
        self.names = list(names)
        values = np.asarray([weights[n] for n in names], dtype=np.float64)
        self.weights = values / values.sum()
        self.updates = 0

    def current(self) -> dict[str, float]:
        return dict(zip(self.names, self.weights.tolist()))

    def to_score(self) -> list[str]:
        """The domains whose held-out signal the next `update` needs."""
        return list(self.names)

    def update(self, signals: dict[str, float]) -> dict[str, float]:
        """Take one step from the `to_score()` domains' signals; return the new weights."""
        self.updates += 1
        self.weights = self._step(np.asarray([signals[n] for n in self.names], dtype=np.float64))
        return self.current()

    def _step(self, signals: np.ndarray) -> np.ndarray:
        return self.weights

    def state_dict(self) -> dict:
        return {"kind": type(self).__name__, "format": STATE_FORMAT, "names": self.names,
                "weights": self.weights.tolist(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != type(self).__name__ or state.get("names") != self.names:
            raise ValueError(f"learner state is for {state.get('kind')} over {state.get('names')}, "
                             f"not {type(self).__name__} over {self.names}")
        if state.get("format", 1) != STATE_FORMAT:
            raise ValueError(f"learner state has format {state.get('format', 1)}, this version reads {STATE_FORMAT} "
                             "(the learners changed to the papers' algorithms): restart the stage")
        self.weights = np.asarray(state["weights"], dtype=np.float64)
        self.updates = int(state["updates"])


class StaticLearner(Learner):
    """Fixed weights."""


class DoReMiLearner(Learner):
    """DoReMi: exponentiated gradient on per-token clipped excess losses, smoothed weights carried on."""

    needs_reference = True

    def __init__(self, names, weights, step_size: float = 1.0, smoothing: float = 1e-3):
        super().__init__(names, weights)
        self.step_size, self.smoothing = step_size, smoothing
        self.average = self.weights.copy()  # mean of the weights after each update; a_0 until the first

    def _step(self, excess: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):  # a domain at weight 0 stays there unless smoothing lifts it
            log_alpha = np.log(self.weights) + self.step_size * excess
        log_alpha -= np.logaddexp.reduce(log_alpha)  # normalise
        alpha = (1 - self.smoothing) * np.exp(log_alpha) + self.smoothing / len(self.names)
        self.average = self.average + (alpha - self.average) / self.updates
        return alpha

    def state_dict(self) -> dict:
        return {**super().state_dict(), "average": self.average.tolist()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.average = np.asarray(state["average"], dtype=np.float64)


class ODMLearner(Learner):
    """Online Data Mixing: EXP3 over domains, one drawn domain's importance-weighted loss per update."""

    def __init__(self, names, weights=None, step_size: float | None = None, reward_decay: float = 0.9,
                 seed: int = 0):
        super().__init__(names, {n: 1.0 for n in names})
        if step_size is not None and not 0 < step_size <= 1.0 / len(names):
            raise ValueError(f"odm's rate must be in (0, 1/K] for K={len(names)} domains, got {step_size}")
        self.fixed_rate, self.decay, self.seed = step_size, reward_decay, seed
        self.rewards = np.zeros(len(names))

    def _rate(self, t: int) -> float:
        """e_t: the exploration floor and the step size of the policy used after update t-1."""
        k = len(self.names)
        return self.fixed_rate if self.fixed_rate is not None else min(1.0 / k, math.sqrt(math.log(k) / (k * t)))

    def to_score(self) -> list[str]:
        """The arm pulled at the coming update, drawn from the policy in effect.

        Seeded by (seed, update number), not a running generator: the draw is the same on every rank
        and after a resume with nothing more to save."""
        u = np.random.default_rng([self.seed, self.updates + 1]).random()
        index = int(np.searchsorted(np.cumsum(self.weights), u, side="right"))
        return [self.names[min(index, len(self.names) - 1)]]  # min: cumsum may end a hair below 1

    def update(self, signals: dict[str, float]) -> dict[str, float]:
        """One EXP3 round: `signals` holds the pulled domain's held-out loss only."""
        if len(signals) != 1:
            raise ValueError(f"odm observes one domain per update (the one to_score() drew), got {sorted(signals)}")
        (name, loss), = signals.items()
        i = self.names.index(name)
        self.updates += 1
        # The weights in effect are the probabilities the arm was drawn with.
        self.rewards[i] = self.decay * self.rewards[i] + (1 - self.decay) * loss / self.weights[i]
        scores = self._rate(self.updates) * self.rewards
        policy = np.exp(scores - scores.max())
        explore = self._rate(self.updates + 1)
        self.weights = (1 - len(self.names) * explore) * policy / policy.sum() + explore
        return self.current()

    def state_dict(self) -> dict:
        return {**super().state_dict(), "rewards": self.rewards.tolist()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.rewards = np.asarray(state["rewards"], dtype=np.float64)


def make_learner(kind: str, names: list[str], weights: dict[str, float], step_size: float | None = None,
                 smoothing: float = 1e-3, reward_decay: float = 0.9, seed: int = 0) -> Learner:
    """The learner named `kind` (one of LEARNERS) over domains `names`, starting from `weights`."""
    if kind == "static":
        return StaticLearner(names, weights)
    if kind == "doremi":
        return DoReMiLearner(names, weights, 1.0 if step_size is None else step_size, smoothing)
    if kind == "odm":
        return ODMLearner(names, weights, step_size, reward_decay, seed)
    raise ValueError(f"unknown learner '{kind}' (expected one of: {', '.join(LEARNERS)})")
