"""On a 2-task sequence (date_format, then sorting) on the toy model, each guard forgets measurably less
of task A than naive fine-tuning while still learning task B.

Forgetting is measured as the rise of task A's held-out completion loss (mean token NLL on 64 test rows)
from after stage A to after stage B, learning as the fall of task B's. Losses, not exact-match accuracy:
on this 0.9M model the adapter guards (OSF, O-LoRA) reach ~0.55 token accuracy in a short stage but
rarely a whole exact answer (benchmarks/forgetting.py, docs/forgetting_toy.md), so accuracy would read
0% -> 0% for them and say nothing. Stages run through the real runner, in-process, without lm-eval.
"""

from __future__ import annotations

import pytest

from tests.toy_sequences import ADAPTER_TRAIN, OLORA_ALL_LINEAR, STAGE_A, STAGE_B, run_stages, sequence_losses

pytestmark = [pytest.mark.slow, pytest.mark.serial]

@pytest.fixture(scope="module")
def sequences(pretrained_toy, naive_toy_sequence, tmp_path_factory):
    """Task A then task B per method -> (A's loss after A, A's after B, B's before B, B's after B)."""
    shared_root, naive = naive_toy_sequence
    variants = {
        "replay": [STAGE_A, {**STAGE_B, "replay": {"stages": ["a"], "ratio": 0.2}}],
        "kl_anchor": [STAGE_A, {**STAGE_B, "guard": {"method": "kl_anchor", "weight": 1.0}}],
        "osf": [STAGE_A, {**STAGE_B, "guard": {"method": "osf", "preserved": 0.5}}],
        "olora": [{**STAGE_A, "guard": OLORA_ALL_LINEAR, "train": ADAPTER_TRAIN},
                  {**STAGE_B, "guard": OLORA_ALL_LINEAR, "train": ADAPTER_TRAIN}],
    }
    measured = {"naive": naive}
    for name, stages in variants.items():
        # The variants sharing naive's stage a run in its run folder: the runner skips a and retrains b.
        if name == "olora":
            out = run_stages(tmp_path_factory.mktemp("olora"), "olora", pretrained_toy, stages)
        else:
            out = run_stages(shared_root, "shared", pretrained_toy, stages)
        measured[name] = {**sequence_losses(out), "log": (out / "b" / "train_log.json").read_text()}
        print(name, {k: round(v, 3) for k, v in measured[name].items() if k != "log"})  # shown with -s
    return measured


def _forgetting(m: dict) -> float:
    return m["a_after_b"] - m["a_after_a"]


def test_naive_fine_tuning_forgets_task_a(sequences):
    naive = sequences["naive"]
    assert _forgetting(naive) > 1.0, naive  # nats per token: task A is largely lost
    assert naive["b_after_b"] < 0.5 * naive["b_before_b"], naive


# Not the freeze guard: on the toy's 4 layers its forgetting against naive's swings with the kernels' rounding alone
# (2 cores, both threads, measured on one Intel Xeon: with 1, 2, 3 frozen layers 1.60x, 0.84x, 0.46x naive's on its
# AVX512 kernels, 0.54x, 0.70x, 1.02x with the AVX2 kernels forced), so a bar here would test the processor.
# test_freeze.py tests its mechanism (the frozen weights stay bit for bit); what it keeps is measured on SmolLM2.
@pytest.mark.parametrize("guard", ["replay", "kl_anchor", "osf", "olora"])
def test_guard_forgets_less_than_naive_and_still_learns(sequences, guard):
    measured, naive = sequences[guard], sequences["naive"]
    # Fragile for O-LoRA: its adapters barely learn task A on this 0.9M model (A's loss 4.4-4.6 after A, naive
    # 0.86), so its forgetting is measured from a poorly learned state and swings with float rounding: from this
    # file's pretrained toy 0.65x naive's with two threads; from the quickstart's pretrain (the same settings
    # through the CLI) 0.83x with one thread; from an in-process copy of it 0.36x with one. Hence the `serial`
    # mark (make test runs it in one process with both cores) and conftest's own pretraining.
    assert _forgetting(measured) < 0.7 * _forgetting(naive), (measured, naive)
    # Task B was learned too. O-LoRA's rank-8 q/v adapters learn `sorting` slowly on this 0.9M model
    # (measured: loss 4.97 -> 4.51 in 100 steps, and plain LoRA the same), so its bar is a 5% fall.
    learned = 0.95 if guard == "olora" else 0.75
    assert measured["b_after_b"] < learned * measured["b_before_b"], measured


def test_olora_orthogonality_falls_while_training(sequences):
    import json

    values = [e["guard/olora"] for e in json.loads(sequences["olora"]["log"]) if "guard/olora" in e]
    assert len(values) >= 3 and values[-1] < 0.5 * values[0], values
