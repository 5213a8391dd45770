"""Rows of the general-knowledge tasks, from data that ships offline in the `countryinfo` package.

    capital_rows()   # [{"country": "Afghanistan", "prompt": "...", "answers": ["Kabul"]}, ...]  ~246 rows
    region_rows()    # [{"country": "Afghanistan", "prompt": "...", "label": 2}, ...]  label indexes REGIONS

Prompts are few-shot completions ("Question: ...\\nAnswer:" three times with fixed shots, then the question),
not chat turns: measured on SmolLM2-135M-Instruct (80 countries, greedy) this format answers with the bare
city name 33/80 times, as often as the chat template does (31-34/80 with the city anywhere in a sentence),
and the bare answer is scored by exact match, not by searching a sentence ("Albania is the capital of
Albania" would contain "Albania"). The shot countries are left out of the test rows. Run
`python -m eval.general_tasks` to build the tasks and print a few rows.

Rows are in a fixed shuffled order, not alphabetical: lm-eval's `limit` (a recipe's `eval.max_examples`)
takes the first rows, and those should be a fair sample of the world, not its A-to-C islands.
"""

from __future__ import annotations

import random
import unicodedata

REGIONS = ("Africa", "the Americas", "Asia", "Europe", "Oceania")
_REGION_OF = {"Africa": 0, "Americas": 1, "Asia": 2, "Europe": 3, "Oceania": 4}

ORDER_SEED = 0
CAPITAL_SHOTS = (("Germany", "Berlin"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"))
REGION_SHOTS = (("Germany", "Europe"), ("Japan", "Asia"), ("Kenya", "Africa"))

# Other names a fair grader accepts: a capital renamed back since the data was written, a common short form.
CAPITAL_ALIASES = {"Nur-Sultan": ("Astana",), "Washington D.C.": ("Washington",)}


def countries() -> list[dict]:
    """Every country in `countryinfo` with its name, capital ('' if none) and region, in the fixed shuffled order."""
    from countryinfo import all_countries

    found = {}
    for country in all_countries():
        capital = country.capital()
        capital = capital[0] if isinstance(capital, list) and capital else capital
        found[country.name()] = {
            "country": country.name(),
            "capital": capital if isinstance(capital, str) else "",
            "region": country.region() or "",
        }
    rows = [found[name] for name in sorted(found)]
    random.Random(ORDER_SEED).shuffle(rows)
    return rows


def capital_rows() -> list[dict]:
    """One row per country with a capital: a few-shot prompt and every answer that counts as right."""
    shots = "".join(f"Question: What is the capital of {c}?\nAnswer: {a}\n\n" for c, a in CAPITAL_SHOTS)
    skip = {c for c, _ in CAPITAL_SHOTS}
    return [
        {
            "country": row["country"],
            "prompt": f"{shots}Question: What is the capital of {row['country']}?\nAnswer:",
            "answers": capital_answers(row["capital"]),
        }
        for row in countries()
        if row["capital"].strip() and row["country"] not in skip
    ]


def capital_answers(capital: str) -> list[str]:
    """The capital as written, split where the data lists several ("A / B"), with accent-free spellings
    (the model may write "Bogota" for "Bogotá") and known aliases; order kept, no repeats."""
    names = [part.strip() for part in capital.split(" / ") if part.strip()]
    names += [alias for name in list(names) for alias in CAPITAL_ALIASES.get(name, ())]
    answers: list[str] = []
    for name in names:
        for spelling in (name, _without_accents(name)):
            if spelling not in answers:
                answers.append(spelling)
    return answers


def region_rows() -> list[dict]:
    """One row per country with a region: a few-shot prompt and the index of its region in REGIONS."""
    shots = "".join(f"Question: In which part of the world is {c}?\nAnswer: {r}\n\n" for c, r in REGION_SHOTS)
    skip = {c for c, _ in REGION_SHOTS}
    return [
        {
            "country": row["country"],
            "prompt": f"{shots}Question: In which part of the world is {row['country']}?\nAnswer:",
            "label": _REGION_OF[row["region"]],
        }
        for row in countries()
        if row["region"] in _REGION_OF and row["country"] not in skip
    ]


def _without_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
