"""Generators for the toy skill tasks: each draws one (prompt, answer, rejected) instance from an rng.

Skills are things the general corpus never shows (arithmetic, string edits, date formats), so a model
only learns them from task training. Operands are kept small for a ~3M-parameter model: from the
pretrained toy, 300 SFT steps at batch 32 give date_format ~100% and sorting ~50-60%; addition,
reversal and counting learn more slowly (under 40% in 300-500 steps), which makes them the harder tasks.
Letters are space-separated so that each one is its own token.
See it built with `python -m cpt.toy DIR`.
"""

import random

LETTERS = "abcdefgh"
COUNT_LETTERS = "abcd"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")  # fmt: skip

Instance = tuple[str, str, str]


def _change_one_digit(rng: random.Random, number: str) -> str:
    position = rng.randrange(len(number))
    leading = position == 0 and len(number) > 1
    choices = [d for d in "0123456789" if d != number[position] and not (leading and d == "0")]
    return number[:position] + rng.choice(choices) + number[position + 1 :]


def _swap_adjacent_unequal(rng: random.Random, items: list[str]) -> list[str] | None:
    positions = [i for i in range(len(items) - 1) if items[i] != items[i + 1]]
    if not positions:
        return None
    i = rng.choice(positions)
    return items[:i] + [items[i + 1], items[i]] + items[i + 2 :]


def addition(rng: random.Random) -> Instance:
    """`add 37+45 =` -> `82`; rejected changes one digit of the sum."""
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    answer = str(a + b)
    return f"add {a}+{b} =", answer, _change_one_digit(rng, answer)


def reversal(rng: random.Random) -> Instance:
    """`reverse c a f e =` -> `e f a c`; rejected is a partly reversed string."""
    letters = [rng.choice(LETTERS) for _ in range(rng.randint(3, 5))]
    answer = letters[::-1]
    wrong = _swap_adjacent_unequal(rng, answer) or [_other_letter(rng, answer[0])] + answer[1:]
    return f"reverse {' '.join(letters)} =", " ".join(answer), " ".join(wrong)


def _other_letter(rng: random.Random, letter: str) -> str:
    return rng.choice([c for c in LETTERS if c != letter])


def sorting(rng: random.Random) -> Instance:
    """`sort 5391 =` -> `1359`; rejected has two neighbouring digits out of order."""
    digits = [rng.choice("0123456789") for _ in range(rng.randint(3, 6))]
    answer = sorted(digits)
    wrong = _swap_adjacent_unequal(rng, answer)
    wrong_text = "".join(wrong) if wrong else _change_one_digit(rng, "".join(answer))
    return f"sort {''.join(digits)} =", "".join(answer), wrong_text


def counting(rng: random.Random) -> Instance:
    """`count a in c a b a d =` -> `2`; rejected is off by one."""
    letters = [rng.choice(COUNT_LETTERS) for _ in range(rng.randint(4, 7))]
    target = rng.choice(COUNT_LETTERS)
    count = letters.count(target)
    wrong = count + 1 if count == 0 or rng.random() < 0.5 else count - 1
    return f"count {target} in {' '.join(letters)} =", str(count), str(wrong)


def date_format(rng: random.Random) -> Instance:
    """`date 7 March 2021 =` -> `2021-03-07`; rejected swaps day and month or is a day off."""
    year, month, day = rng.randint(1950, 2049), rng.randint(1, 12), rng.randint(1, 28)
    answer = f"{year}-{month:02d}-{day:02d}"
    if day <= 12 and day != month:
        wrong = f"{year}-{day:02d}-{month:02d}"
    else:
        wrong = f"{year}-{month:02d}-{day % 28 + 1:02d}"
    return f"date {day} {MONTHS[month - 1]} {year} =", answer, wrong


SKILLS = {
    "addition": addition,
    "reversal": reversal,
    "sorting": sorting,
    "counting": counting,
    "date_format": date_format,
}
