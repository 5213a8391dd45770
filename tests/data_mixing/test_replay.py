"""Replay: earlier stages' data (or a replay file) enters an SFT stage as rows at the configured
share, and a cpt stage as a domain held at its share while the other weights are learned; with
`weights`, each source gets its weighted part of the share whatever its size."""

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
from cpt.stages.sft import train_rows
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


def _three_sources(tmp_path, replay: dict) -> StageContext:
    """Stage `last` after two sft stages of 40 and 10 rows, with a 20-row replay file."""
    big = _jsonl(tmp_path / "big.jsonl", [{"prompt": f"b{i}", "completion": " big"} for i in range(40)])
    small = _jsonl(tmp_path / "small.jsonl", [{"prompt": f"s{i}", "completion": " small"} for i in range(10)])
    file = _jsonl(tmp_path / "file.jsonl", [{"prompt": f"f{i}", "completion": " file"} for i in range(20)])
    new = _jsonl(tmp_path / "new.jsonl", [{"prompt": f"n{i}", "completion": " new"} for i in range(300)])
    earlier = [SFTStageSpec(name="big", kind="sft", data={"path": big}),
               SFTStageSpec(name="small", kind="sft", data={"path": small})]
    spec = SFTStageSpec(name="last", kind="sft", data={"path": new},
                        replay={"stages": ["big", "small"], "path": file, **replay})
    return StageContext(spec=spec, input_model=tmp_path, reference_model=tmp_path,
                        stage_dir=tmp_path / "run" / "stages" / "last", seed=0, earlier=earlier_stages(earlier))


def test_sft_replay_weights_split_the_share_by_weight_not_by_size(tmp_path):
    pooled = Counter(train_rows(_three_sources(tmp_path, {"ratio": 0.5}))["completion"])
    # Without weights the 70 old rows are pooled: each source's part follows its row count (40:10:20).
    assert pooled[" new"] == 300 and sum(pooled.values()) == 600
    assert pooled[" big"] > 3 * pooled[" small"] and pooled[" big"] > pooled[" file"] > pooled[" small"]
    weighted = Counter(train_rows(_three_sources(tmp_path, {"ratio": 0.5, "weights": {"small": 3}}))["completion"])
    # small 3, big and the file 1 each: 3/5, 1/5, 1/5 of the 300 replayed rows; small's 10 rows are cycled.
    assert weighted[" new"] == 300
    assert (weighted[" small"], weighted[" big"], weighted[" file"]) == (180, 60, 60)


def test_cpt_replay_weights_make_a_fixed_domain_per_source(tmp_path):
    from cpt.stages.cpt import _extra_rows
    from cpt.stages.cpt_config import CPTStageSpec

    ctx = _three_sources(tmp_path, {"ratio": 0.3, "weights": {"big": 2, "path": 0.5}})
    spec = CPTStageSpec(name="last", kind="cpt", domains=[{"name": "docs", "data": ctx.spec.data}],
                        replay=ctx.spec.replay, train={"max_steps": 1})
    rows, fixed = _extra_rows(StageContext(spec=spec, input_model=tmp_path, reference_model=tmp_path,
                                           stage_dir=ctx.stage_dir, seed=0, earlier=ctx.earlier))
    assert fixed == pytest.approx({"replay/big": 0.3 * 2 / 3.5, "replay/small": 0.3 / 3.5, "replay/path": 0.3 * 0.5 / 3.5})
    assert rows["replay/small"]["text"][0] == "s0 small" and len(rows["replay/big"]) == 40
    assert sum(fixed.values()) == pytest.approx(0.3)


@pytest.mark.parametrize("weights, message", [
    ({"other": 1}, "weights: 'other' is not one of this replay's sources (big, small, path)"),
    ({"small": 0}, "weights.small: must be > 0, got 0"),
])
def test_replay_weights_name_a_source_and_are_positive(tmp_path, weights, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _three_sources(tmp_path, {"ratio": 0.2, "weights": weights})


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
