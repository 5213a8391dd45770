"""The "general" domain: templated English-like documents that also state every country's capital.

Each fact appears in several phrasings, including atlas lines `capital of X = Y` in the very form
the `capitals` task asks, so a model pretrained on this corpus can answer capitals it never saw as a task.
See it built with `python -m cpt.toy DIR`.
"""

import random

from cpt.toy.facts import Country

_ADJECTIVES = (
    "old",
    "young",
    "quiet",
    "busy",
    "small",
    "large",
    "happy",
    "tired",
    "clever",
    "brave",
    "green",
    "dark",
    "bright",
    "cold",
    "warm",
    "gentle",
)
_PEOPLE = (
    "farmer",
    "teacher",
    "child",
    "doctor",
    "sailor",
    "baker",
    "king",
    "queen",
    "traveler",
    "student",
    "painter",
    "soldier",
    "merchant",
    "poet",
)
_THINGS = (
    "river",
    "house",
    "garden",
    "boat",
    "letter",
    "book",
    "market",
    "bridge",
    "tower",
    "forest",
    "song",
    "road",
    "window",
    "horse",
    "lamp",
    "field",
)
_VERBS = ("sees", "finds", "builds", "paints", "visits", "remembers", "carries", "opens", "likes", "watches")
_PREPOSITIONS = ("near", "behind", "across", "beside", "under", "above")
_TIMES = ("In the morning", "At night", "Every day", "Last year", "In winter", "After the rain", "Today")
_KNOWN_FOR = ("bridges", "markets", "towers", "gardens", "songs", "horses", "boats", "books", "lamps")


def _story_sentence(rng: random.Random) -> str:
    subject = f"the {rng.choice(_ADJECTIVES)} {rng.choice(_PEOPLE)}"
    where = f"{rng.choice(_PREPOSITIONS)} the {rng.choice(_THINGS)}"
    body = f"{subject} {rng.choice(_VERBS)} the {rng.choice(_THINGS)} {where}."
    if rng.random() < 0.4:
        return f"{rng.choice(_TIMES)}, {body}"
    return body[0].upper() + body[1:]


def _fact_sentence(rng: random.Random, country: Country) -> str:
    templates = (
        "The capital of {c} is {k}.",
        "{k} is the capital of {c}.",
        "The capital city of {c} is {k}.",
        "In {c}, the capital is {k}.",
        "{k}, the capital of {c}, is known for its {x}.",
        "The traveler went to {c} and stayed in {k}, its capital.",
    )
    return rng.choice(templates).format(c=country.name, k=country.capital, x=rng.choice(_KNOWN_FOR))


def _story_document(rng: random.Random, countries: tuple[Country, ...]) -> str:
    sentences = [_story_sentence(rng) for _ in range(rng.randint(3, 6))]
    if rng.random() < 0.5:
        sentences.insert(rng.randrange(len(sentences) + 1), _fact_sentence(rng, rng.choice(countries)))
    return " ".join(sentences)


def _country_document(rng: random.Random, country: Country) -> str:
    sentences = [
        f"{country.name} is a {rng.choice(_ADJECTIVES)} country.",
        _fact_sentence(rng, country),
        _story_sentence(rng),
        _fact_sentence(rng, country),
    ]
    return " ".join(sentences)


def _atlas_document(group: list[Country]) -> str:
    return "\n".join(f"capital of {country.name} = {country.capital}" for country in group)


def _fact_documents(rng: random.Random, countries: tuple[Country, ...], rounds: int) -> list[str]:
    # Every country gets a paragraph and an atlas line in each round, so every fact is seen often.
    documents = []
    for _ in range(rounds):
        order = list(countries)
        rng.shuffle(order)
        documents += [_country_document(rng, country) for country in order]
        documents += [_atlas_document(order[i : i + 5]) for i in range(0, len(order), 5)]
    return documents


def general_documents(
    rng: random.Random, countries: tuple[Country, ...], stories: int, rounds: int
) -> list[str]:
    """Return `stories` story documents mixed with `rounds` rounds of per-country fact documents, shuffled."""
    documents = [_story_document(rng, countries) for _ in range(stories)]
    documents += _fact_documents(rng, countries, rounds)
    rng.shuffle(documents)
    return documents
