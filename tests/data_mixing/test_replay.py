"""Replay: earlier stages' data (or a replay file) enters an SFT stage as rows at the configured
share, and a cpt stage as a domain held at its share while the other weights are learned."""

from __future__ import annotations

import json
import re
from collections import Counter
from itertools import islice

import pytest
from datasets import Dataset

from cpt.data.earlier import earlier_rows, earlier_stages
from cpt.errors import UserError
from cpt.stages.context import StageContext
from cpt.stages.dpo_config import DPOStageSpec
from cpt.stages.sft_config import ReplaySpec, SFTStageSpec
from data_mixing.callback import compose
from data_mixing.domains import split_held_out
from data_mixing.replay import as_columns, with_replay
from data_mixing.stream import MixtureStream
from tests.data_mixing.fakes import token_docs


def _pc(tag: str, count: int) -> Dataset:
    return Dataset.from_list([{"prompt": f"{tag} {i}:", "completion": f" {tag}"} for i in range(count)])


@pytest.mark.parametrize("ratio, old_rows", [(0.2, 3000), (0.25, 100)])
def test_sft_replay_rows_make_up_the_ratio(ratio, old_rows):
    mixed = with_replay(_pc("new", 2000), _pc("old", old_rows), ratio, seed=0)
    counts = Counter(row.split()[0] for row in mixed["prompt"])
    assert counts["new"] == 2000  # every new row once per epoch
    assert counts["old"] / len(mixed) == pytest.approx(ratio, abs=0.002)
    assert len(set(mixed["prompt"])) == 2000 + min(old_rows, counts["old"])  # few old rows are cycled, not lost


def test_rows_are_converted_to_the_stage_shape_when_sound():
    text = as_columns(_pc("q", 2), ("text",))
    assert text["text"] == ["q 0: q", "q 1: q"]
    pc = as_columns(Dataset.from_list([{"text": "plain"}]), ("prompt", "completion"))
    assert pc[0] == {"prompt": "", "completion": "plain"}
    assert as_columns(Dataset.from_list([{"messages": [{"role": "user", "content": "x"}]}]), ("text",)) is None


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _context(tmp_path, replay: dict) -> StageContext:
    """Stage `later` of a run with two stages before it, resolved into its context as the runner does."""
    first = _jsonl(tmp_path / "first.jsonl", [{"prompt": f"a{i}", "completion": " x"} for i in range(40)])
    old = _jsonl(tmp_path / "old.jsonl", [{"text": f"old text {i}"} for i in range(10)])
    earlier = [SFTStageSpec(name="first", kind="sft", data={"path": first}),
               DPOStageSpec(name="pref", kind="dpo", data={"path": first})]  # then later, then last
    spec = SFTStageSpec(name="later", kind="sft", data={"path": first},
                        replay={k: (old if v == "OLD" else v) for k, v in replay.items()})
    return StageContext(spec=spec, input_model=tmp_path, reference_model=tmp_path,
                        stage_dir=tmp_path / "run" / "stages" / "later", seed=0, earlier=earlier_stages(earlier))


def test_replay_reads_earlier_stages_and_a_file(tmp_path):
    ctx = _context(tmp_path, {"stages": ["first"], "path": "OLD", "ratio": 0.2})
    rows = earlier_rows(ctx, ctx.spec.replay, ("prompt", "completion"), "replay")
    assert len(rows) == 40 + 10 and rows[40] == {"prompt": "", "completion": "old text 0"}


@pytest.mark.parametrize("stage, message", [
    ("last", "replay.stages: 'last' is not an earlier stage (earlier: first, pref)"),
    ("nope", "replay.stages: 'nope' is not an earlier stage"),
    ("pref", "'pref' is a dpo stage, whose data cannot be read again"),
])
def test_replay_of_a_stage_that_is_not_an_earlier_cpt_or_sft_stage(tmp_path, stage, message):
    with pytest.raises(UserError, match=re.escape(message)):
        ctx = _context(tmp_path, {"stages": [stage], "ratio": 0.2})
        earlier_rows(ctx, ctx.spec.replay, ("prompt", "completion"), "replay")


def test_replay_spec_needs_a_source():
    with pytest.raises(ValueError, match="give stages"):
        ReplaySpec(ratio=0.2)


def test_cpt_replay_domain_keeps_its_share_while_the_others_are_learned():
    domains = [split_held_out(n, token_docs(base, 300, seed=i), 16, 0)
               for i, (n, base) in enumerate([("general", 10_000_000), ("code", 20_000_000), ("replay", 30_000_000)])]
    fixed = {"replay": 0.2}
    stream = MixtureStream(domains, compose({"general": 0.5, "code": 0.5}, fixed), max_length=16, seed=0)
    list(islice(iter(stream), 2000))
    stream.set_weights(compose({"general": 0.9, "code": 0.1}, fixed))  # a learner's update
    list(islice(iter(stream), 2000))
    counts = stream.consumed_per_domain(4000)
    assert counts["replay"] / 4000 == pytest.approx(0.2, abs=0.02)
    assert counts["general"] > counts["code"]
