"""Static data mixing: domains sampled by fixed weights into one stream.

    mixed = static_mixture({"general": ds_a, "code": ds_b}, {"general": 0.8, "code": 0.2}, seed=0)

Sampling stops when the first domain runs out, so every domain contributes in proportion to its
weight (no domain is oversampled to exhaust a rarer one); a trainer's `max_steps` cycles the
stream when more steps are asked for.
"""

from __future__ import annotations

from datasets import Dataset, interleave_datasets


def static_mixture(domains: dict[str, Dataset], weights: dict[str, float], seed: int) -> Dataset:
    """One dataset with the rows of `domains` interleaved at `weights` (normalised), reproducibly."""
    names = [name for name in domains if weights.get(name, 0.0) > 0]
    total = sum(weights[name] for name in names)
    if len(names) == 1:
        return domains[names[0]].shuffle(seed=seed)
    return interleave_datasets(
        [domains[name].shuffle(seed=seed) for name in names],
        probabilities=[weights[name] / total for name in names],
        seed=seed,
        stopping_strategy="first_exhausted",
    )
