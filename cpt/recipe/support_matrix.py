"""The support matrix: every guard x every stage kind x every launcher, each either run or refused at plan.

    python -m cpt.recipe.support_matrix            # writes docs/support_matrix.md
    python -m cpt.recipe.support_matrix --check    # exit 1 if the committed file differs from the table

The axes come from the registries (guards/support.py's GUARDS: `guard:` methods and guard keys; the
recipe's STAGE_KINDS, GRPO also with its RFT filter; the launchers a recipe's `launch:` names) and each
verdict from guards/support.py's rules, which `cpt plan` and `cpt run` enforce; the tests run every
combination the matrix says runs (tests/cpt/runner/test_support_matrix_runs.py) and plan every one it
refuses (tests/cpt/recipe/test_support_matrix.py).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from cpt.guards.support import GUARDS, Launch, refusal
from cpt.stages.registry import STAGE_KINDS

FILTERED = "grpo+filter"  # a grpo stage with `filter:` (the RFT pre-pass), a kind of its own for the matrix
KINDS = tuple(k for kind in STAGE_KINDS for k in ((kind, FILTERED) if kind == "grpo" else (kind,)))
LAUNCHES = (Launch(1), Launch(2), Launch(2, 2), Launch(2, 3))  # the ones a CPU runs (gloo), 2 processes
ROLLOUTS = ("hf", "vllm")  # grpo's rollout.backend; vllm is planned only here (it needs CUDA)
DOC = Path(__file__).resolve().parents[2] / "docs" / "support_matrix.md"


@dataclass(frozen=True)
class Combination:
    guard: str
    kind: str  # one of KINDS
    launch: Launch
    rollout: str = "hf"

    @property
    def stage_kind(self) -> str:
        return "grpo" if self.kind == FILTERED else self.kind

    @property
    def refusal(self) -> str | None:
        return refusal(self.guard, self.stage_kind, self.launch)


def combinations(launches: tuple[Launch, ...] = LAUNCHES) -> list[Combination]:
    """Every combination, guards in registry order, then kinds, launches and rollouts."""
    return [Combination(guard, kind, launch, rollout)
            for guard in GUARDS for kind in KINDS for launch in launches
            for rollout in (ROLLOUTS if kind.startswith("grpo") else ROLLOUTS[:1])]


def render() -> str:
    """docs/support_matrix.md: one row per guard and stage kind, one column per launcher."""
    messages: list[str] = []
    lines = [
        "# Support matrix",
        "",
        "Generated from `cpt/guards/support.py` by `python -m cpt.recipe.support_matrix`; do not edit by hand.",
        "",
        "Every guard on every stage kind under every launcher either runs or is refused by `cpt plan` and",
        "`cpt run` before anything runs, with the message below. \"runs\": the tests train it for 2 steps and",
        "check the model it writes (2 processes over gloo on a CPU; ZeRO-3 with every parameter partitioned;",
        "one guard method per stage, the guard keys replay, rehearsal and merge beside one of them).",
        "GRPO with `rollout.backend: vllm` follows the same rules; it is checked at plan level here (vLLM",
        "needs CUDA). With several processes the RFT filter samples with transformers generate on every rank,",
        "each its share of the prompts, before the stage's DeepSpeed config exists.",
        "",
        "| guard | stage kind | " + " | ".join(launch.describe() for launch in LAUNCHES) + " |",
        "|---|---|" + "---|" * len(LAUNCHES),
    ]
    for guard in GUARDS:
        for kind in KINDS:
            cells = [_cell(Combination(guard, kind, launch).refusal, messages) for launch in LAUNCHES]
            lines.append(f"| {guard} | {kind} | " + " | ".join(cells) + " |")
    lines += ["", "Refused, with the message `cpt plan` gives:", ""]
    lines += [f"{number}. {message}" for number, message in enumerate(messages, start=1)]
    return "\n".join(lines) + "\n"


def _cell(message: str | None, messages: list[str]) -> str:
    if message is None:
        return "runs"
    if message not in messages:
        messages.append(message)
    return f"refused ({messages.index(message) + 1})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cpt.recipe.support_matrix", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead of writing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not DOC.is_file() or DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is out of date: run python -m cpt.recipe.support_matrix", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    print(DOC)
    return 0


if __name__ == "__main__":
    sys.exit(main())
