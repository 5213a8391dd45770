"""Which capitals the forgetting runs lose: the base model's own confidence in each answer it gets right, against
how many of the runs' checkpoints lose that answer.

    python benchmarks/forgetting_fragile.py --workdir /work/bench-runs --rows 200 \
        --runs klg_a/kl_general10_replay_added-s0 lr025_a_100/freeze2_replay_added_lr025-s0 --label a

Every stage's model of each run is scored on the first `--rows` rows of world_capitals with forgetting_general's
scores_of (cached in WORKDIR/general-rows{N}/, so checkpoints scored before are read, not run again). The base
model's confidence in a question it answers right is the probability of its answer's tokens after the 3-shot prompt
(its own greedy generation, teacher-forced after the exact prompt lm-eval sent). The base's right answers are split into quarters by that
probability, and the table shows, per quarter, the share of (checkpoint, question) pairs where the checkpoint lost
the answer. If what is lost is mostly the base's least confident answers, the loss is a floor that any change of
the weights pays, not knowledge a method failed to protect.
JSON: benchmarks/results/forgetting_fragile_LABEL.json; table: docs/forgetting_fragile_LABEL.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from common import machine, write_result
from forgetting_general import checkpoints, results_dir, scores_of

REPO = Path(__file__).resolve().parents[1]
TASK = "world_capitals"
QUARTERS = 4


def samples_of(checkpoint: Path, rows: int, cache: Path) -> dict[int, dict]:
    """lm-eval's samples of TASK for `checkpoint` (scored first if not cached), by doc_id."""
    scores_of(checkpoint, rows, cache)
    lines = (results_dir(checkpoint, cache) / f"{TASK}.samples.jsonl").read_text().splitlines()
    return {sample["doc_id"]: sample for sample in map(json.loads, lines)}


def answer_probability(model, tokenizer, prompt: str, answer: str) -> float:
    """P(answer | prompt) under `model`: the product of its tokens' probabilities, teacher-forced."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    ids = tokenizer(prompt + answer)["input_ids"]
    if ids[:len(prompt_ids)] != prompt_ids:  # the answer's tokens must follow the prompt's as lm-eval scored them
        raise SystemExit(f"the prompt's tokens change when the answer {answer!r} follows it")
    with torch.no_grad():
        log_probs = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1].float(), dim=-1)
    targets = torch.tensor(ids[len(prompt_ids):])
    return log_probs[len(prompt_ids) - 1:].gather(1, targets[:, None]).sum().exp().item()


def base_confidence(base: Path, samples: dict[int, dict]) -> dict[int, float]:
    """The base's probability of its answer (its own greedy generation, which is right), per question it answers
    right."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(base)
    return {doc_id: answer_probability(model, tokenizer, s["arguments"][0][0], s["resps"][0][0])
            for doc_id, s in samples.items() if s["exact_match"] == 1}


def quarter_table(confidence: dict[int, float], lost_by: dict[str, set[int]]) -> list[dict]:
    """Per quarter of the base's right answers (least confident first): its questions, their probability range and
    the share of (checkpoint, question) pairs lost."""
    ranked = sorted(confidence, key=confidence.get)
    rows = []
    for quarter in range(QUARTERS):
        questions = ranked[quarter * len(ranked) // QUARTERS:(quarter + 1) * len(ranked) // QUARTERS]
        lost = sum(len(set(questions) & lost) for lost in lost_by.values())
        rows.append({"quarter": quarter + 1, "questions": len(questions),
                     "probability_min": confidence[questions[0]], "probability_max": confidence[questions[-1]],
                     "lost_share": 100 * lost / (len(questions) * len(lost_by)), "lost": lost})
    return rows


def markdown(table: list[dict], lost_by: dict[str, set[int]], args: argparse.Namespace) -> str:
    total = sum(row["lost"] for row in table)
    lines = [f"# Which capitals are lost: {args.label}", "",
             (f"`python benchmarks/forgetting_fragile.py --workdir {args.workdir} --rows {args.rows} --runs "
              f"{' '.join(args.runs)} --label {args.label}` on {machine()}."), "",
             (f"{len(lost_by)} checkpoints (every stage of each run); the base's {sum(r['questions'] for r in table)} "
              f"right answers of {args.rows} in quarters by the base's probability of its answer; {total} "
              "(checkpoint, question) losses in all."), "",
             "| quarter (least confident first) | questions | base probability | lost, % of pairs | share of all losses |",
             "|---|---|---|---|---|"]
    for row in table:
        lines.append(f"| {row['quarter']} | {row['questions']} | {row['probability_min']:.2f}-{row['probability_max']:.2f} "
                     f"| {row['lost_share']:.1f} | {100 * row['lost'] / max(total, 1):.0f}% |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="the forgetting benchmark's --workdir")
    parser.add_argument("--runs", nargs="+", required=True, help="finished run folders in it, as forgetting_general")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--label", required=True, help="names the outputs: forgetting_fragile_LABEL.json/.md")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    cache = args.workdir / f"general-rows{args.rows}"
    bases = {checkpoints(args.workdir / run)[0] for run in args.runs}
    if len(bases) != 1:
        raise SystemExit(f"the runs start from different base models: {sorted(map(str, bases))}")
    base = bases.pop()
    base_samples = samples_of(base, args.rows, cache)
    lost_by = {}
    for run in args.runs:
        for model in sorted((args.workdir / run / "stages").glob("*/model")):
            samples = samples_of(model, args.rows, cache)
            lost_by[f"{run}/{model.parent.name}"] = {i for i, s in base_samples.items()
                                                      if s["exact_match"] == 1 and samples[i]["exact_match"] == 0}
    confidence = base_confidence(base, base_samples)
    table = quarter_table(confidence, lost_by)
    report = markdown(table, lost_by, args)
    print(report)
    write_result({"benchmark": f"forgetting_fragile_{args.label}", "machine": machine(), "rows": args.rows,
                  "table": table, "checkpoints": {name: sorted(lost) for name, lost in lost_by.items()},
                  "base_confidence": confidence}, args.out, f"forgetting_fragile_{args.label}.json")
    (REPO / "docs" / f"forgetting_fragile_{args.label}.md").write_text(report)


if __name__ == "__main__":
    main()
