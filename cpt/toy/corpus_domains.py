"""The new domains for continual pretraining: code-like text, recipes and legal clauses.

Each is templated and different in style from the "general" domain, so training on one shifts the
model's distribution away from the others (what data mixing and forgetting metrics need to see).
See it built with `python -m cpt.toy DIR`.
"""

import random

_NAMES = (
    "total",
    "count",
    "items",
    "value",
    "result",
    "index",
    "price",
    "score",
    "name",
    "size",
    "data",
    "limit",
)
_FUNCS = ("compute", "scale", "merge", "filter", "update", "load", "check", "build", "parse", "count")
_OPS = ("+", "-", "*")
_INGREDIENTS = (
    "flour",
    "sugar",
    "butter",
    "milk",
    "rice",
    "onions",
    "tomatoes",
    "garlic",
    "lemon juice",
    "salt",
    "honey",
    "carrots",
    "beans",
    "cheese",
)
_DISHES = ("bread", "soup", "cake", "stew", "pie", "salad", "porridge", "curry")
_UNITS = ("cups", "grams", "spoons", "pinches")
_ACTIONS = ("Mix", "Stir", "Whisk", "Fold", "Chop", "Add")
_PARTIES = (
    "the tenant",
    "the landlord",
    "the buyer",
    "the seller",
    "the employer",
    "the employee",
    "the lender",
)
_DUTIES = (
    "pay the agreed amount",
    "give written notice",
    "keep the premises in good repair",
    "deliver the goods",
    "return the deposit",
    "maintain insurance",
    "keep all records",
)


def _code_function(rng: random.Random) -> str:
    name = f"{rng.choice(_FUNCS)}_{rng.choice(_NAMES)}"
    arg, acc, var = rng.sample(_NAMES, 3)
    lines = [
        f"def {name}({arg}_list, {var}):",
        f"    {acc} = {rng.randint(0, 9)}",
        f"    for {arg} in {arg}_list:",
    ]
    if rng.random() < 0.5:
        lines.append(f"        if {arg} > {rng.randint(0, 99)}:")
        lines.append(f"            {acc} = {acc} {rng.choice(_OPS)} {arg}")
    else:
        lines.append(f"        {acc} += {arg} {rng.choice(_OPS)} {var}")
    lines.append(f"    return {acc}")
    return "\n".join(lines)


def code_document(rng: random.Random) -> str:
    """A few small Python-like functions."""
    return "\n\n".join(_code_function(rng) for _ in range(rng.randint(1, 3)))


def recipe_document(rng: random.Random) -> str:
    """A short recipe: title, steps with quantities, baking time."""
    title = f"Recipe: {rng.choice(_INGREDIENTS)} {rng.choice(_DISHES)}."
    steps = [
        f"{rng.choice(_ACTIONS)} {rng.randint(1, 5)} {rng.choice(_UNITS)} of {rng.choice(_INGREDIENTS)}"
        f" with {rng.randint(1, 5)} {rng.choice(_UNITS)} of {rng.choice(_INGREDIENTS)}."
        for _ in range(rng.randint(2, 4))
    ]
    end = (
        f"Bake at {rng.choice((160, 180, 200, 220))} degrees for {rng.randint(10, 60)} minutes."
        f" Serves {rng.randint(2, 8)}."
    )
    return " ".join([title, *steps, end])


def _clause(rng: random.Random, number: int) -> str:
    party, other = rng.sample(_PARTIES, 2)
    return (
        f"Section {number}. {party.capitalize()} shall {rng.choice(_DUTIES)} to {other} "
        f"within {rng.randint(2, 60)} days of the effective date, unless {other} agrees otherwise in writing."
    )


def legal_document(rng: random.Random) -> str:
    """A few numbered contract clauses."""
    first = rng.randint(1, 20)
    return "\n".join(_clause(rng, first + i) for i in range(rng.randint(2, 4)))


DOMAIN_DOCUMENTS = {"code": code_document, "recipes": recipe_document, "legal": legal_document}
