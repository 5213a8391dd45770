"""Invented world facts (countries and their capitals) shared by the general corpus and the fact tasks.

The names are made up so that the only way a model can know them is from the toy "general" corpus.
See it built with `python -m cpt.toy DIR`.
"""

import random
from dataclasses import dataclass

NUM_COUNTRIES = 60  # few enough that a 1.5M model learns them all in a few minutes of CPU

_ONSETS = (
    "b",
    "br",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "k",
    "kl",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "st",
    "t",
    "tr",
    "v",
    "z",
)
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
_CODAS = ("", "", "n", "r", "l", "s", "k", "m")
_COUNTRY_ENDINGS = ("ia", "land", "or", "ana", "ea", "istan", "ara")


@dataclass(frozen=True)
class Country:
    """One invented country and its capital city."""

    name: str
    capital: str


def _syllable(rng: random.Random) -> str:
    return rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)


def _country_name(rng: random.Random) -> str:
    stem = "".join(_syllable(rng) for _ in range(rng.randint(1, 2)))
    ending = rng.choice(_COUNTRY_ENDINGS)
    if stem[-1] in "aeiou" and ending[0] in "aeiou":
        stem = stem[:-1]
    return (stem + ending).capitalize()


def _city_name(rng: random.Random) -> str:
    return "".join(_syllable(rng) for _ in range(2)).capitalize()


def _unique_names(make, rng: random.Random, count: int, taken: set[str]) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = make(rng)
        if name not in taken and 4 <= len(name) <= 12:
            taken.add(name)
            names.append(name)
    return names


def make_countries(seed: int) -> tuple[Country, ...]:
    """Return NUM_COUNTRIES invented countries with distinct names and capitals, deterministic from seed."""
    rng = random.Random(f"{seed}-countries")
    taken: set[str] = set()
    countries = _unique_names(_country_name, rng, NUM_COUNTRIES, taken)
    capitals = _unique_names(_city_name, rng, NUM_COUNTRIES, taken)
    return tuple(Country(name, capital) for name, capital in zip(countries, capitals))
