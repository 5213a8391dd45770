"""The toy text domains and their deterministic train/validation splits.

"general" is what the toy model is pretrained on first (it carries the capitals facts);
the other domains are new material for continual pretraining.
See it built with `python -m cpt.toy DIR`.
"""

import random

from cpt.toy.corpus_domains import DOMAIN_DOCUMENTS
from cpt.toy.corpus_general import general_documents
from cpt.toy.facts import make_countries

TOY_DOMAINS: tuple[str, ...] = ("general", *DOMAIN_DOCUMENTS)
GENERAL_SIZES = {"train": (150, 10), "validation": (30, 1)}  # (story documents, fact rounds)
DOMAIN_SIZES = {"train": 2000, "validation": 100}


def domain_texts(domain: str, split: str, seed: int) -> list[str]:
    """Return the documents of one domain split ("train" or "validation"), deterministic from seed."""
    rng = random.Random(f"{seed}-domain-{domain}-{split}")
    if domain == "general":
        stories, rounds = GENERAL_SIZES[split]
        return general_documents(rng, make_countries(seed), stories, rounds)
    if domain in DOMAIN_DOCUMENTS:
        return [DOMAIN_DOCUMENTS[domain](rng) for _ in range(DOMAIN_SIZES[split])]
    raise ValueError(f"unknown toy domain {domain!r}; expected one of {', '.join(TOY_DOMAINS)}")
