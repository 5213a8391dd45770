"""Self-synthesized rehearsal: the rows are the starting model's own greedy answers (plain prompts as TRL
tokenizes them, chat prompts through the chat template), answers that never reach EOS are dropped, the
rows are generated once and reused on resume (an interrupted generation continues where it stopped),
the prompts can be the model's own writing from a seed, and the stage's data holds the configured share.
Run: pytest tests/cpt/stages/test_rehearsal.py (the toy model, random weights: a few seconds)."""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cpt.data.earlier import earlier_stages
from cpt.errors import UserError
from cpt.stages import rehearsal_generate
from cpt.stages.context import StageContext
from cpt.stages.rehearsal import (
    GENERATING_FILE,
    INFO_FILE,
    PROMPTS_FILE,
    ROWS_FILE,
    _check_rows,
    rehearsal_rows,
    row_style,
)
from cpt.stages.rehearsal_config import RehearsalPrompts, RehearsalSpec
from cpt.stages.sft import train_rows
from cpt.stages.sft_config import SFTStageSpec

PROMPTS = ["sort 887805 =", "add 25+90 =", "reverse c d f e a b =", "count c in b c d b a b =", "sort 31 =",
           "add 1+2 =", "reverse x y =", "count a in a b a ="]  # several lengths: batches are left-padded


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _context(tmp_path, model_dir, rehearsal: dict, data: list[dict] | None = None, replay: dict | None = None,
             name: str = "run") -> StageContext:
    """Stage `later` of a run with an earlier sft stage `first` on PROMPTS (resolved as the runner does)."""
    first = _jsonl(tmp_path / "first.jsonl", [{"prompt": p, "completion": " old"} for p in PROMPTS])
    own = _jsonl(tmp_path / "own.jsonl", data or [{"prompt": f"new {i} =", "completion": " new"} for i in range(90)])
    run = tmp_path / name
    spec = SFTStageSpec(name="later", kind="sft", data={"path": own}, rehearsal=rehearsal,
                        replay={**replay, "path": first} if replay else None)
    stage_dir = run / "stages" / "later"
    stage_dir.mkdir(parents=True, exist_ok=True)
    earlier = earlier_stages([SFTStageSpec(name="first", kind="sft", data={"path": first})])
    return StageContext(spec=spec, input_model=model_dir, reference_model=model_dir, stage_dir=stage_dir, seed=0,
                        earlier=earlier)


def _model(model_dir):
    return AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir).eval()


@torch.no_grad()
def _direct_greedy(tokenizer, model, ids: list[int], max_new_tokens: int) -> tuple[str, bool]:
    """One prompt alone, through `generate` with the model's own settings: the text up to EOS, and whether it got there."""
    output = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=max_new_tokens,
                            pad_token_id=tokenizer.pad_token_id)[0, len(ids):].tolist()
    ended = tokenizer.eos_token_id in output
    cut = output[: output.index(tokenizer.eos_token_id)] if ended else output
    return tokenizer.decode(cut, skip_special_tokens=True), ended


@pytest.fixture
def counted(monkeypatch):
    """Counts the prompts the starting model is asked to answer."""
    asked = []
    real = rehearsal_generate.greedy_answers

    def counting(model, tokenizer, prompts, *args, **kwargs):
        asked.extend(prompts)
        yield from real(model, tokenizer, prompts, *args, **kwargs)

    monkeypatch.setattr(rehearsal_generate, "greedy_answers", counting)
    return asked


def test_rows_are_the_starting_models_own_greedy_answers(tmp_path, toy_dir):
    rehearsal = {"prompts": {"stages": ["first"]}, "rows": 6, "ratio": 0.25, "max_new_tokens": 6,
                 "batch_size": 4, "keep_unfinished": True}
    rows = rehearsal_rows(_context(tmp_path, toy_dir / "model", rehearsal), RehearsalSpec(**rehearsal), "plain")
    tokenizer, model = _model(toy_dir / "model")
    assert len(rows) == 6 and len(set(rows["prompt"])) == 6 and set(rows["prompt"]) <= set(PROMPTS)
    for row in rows:
        direct, _ = _direct_greedy(tokenizer, model, tokenizer(row["prompt"])["input_ids"], 6)
        assert row["completion"] == direct, row


def test_a_bf16_stage_answers_under_bf16_autocast(tmp_path, toy_dir):
    from dataclasses import replace

    from cpt.core.precision import Precision

    rehearsal = {"prompts": {"stages": ["first"]}, "rows": 4, "ratio": 0.25, "max_new_tokens": 5, "keep_unfinished": True}
    ctx = replace(_context(tmp_path, toy_dir / "model", rehearsal), precision=Precision(True, False, "test"))
    rows = rehearsal_rows(ctx, RehearsalSpec(**rehearsal), "plain")
    tokenizer, model = _model(toy_dir / "model")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        direct = [_direct_greedy(tokenizer, model, tokenizer(p)["input_ids"], 5)[0] for p in rows["prompt"]]
    assert rows["completion"] == direct


def test_chat_stage_asks_through_the_chat_template(tmp_path, toy_dir):
    (tmp_path / "prompts.txt").write_text("\n".join(PROMPTS[:5]) + "\n", encoding="utf-8")
    rehearsal = {"prompts": {"path": str(tmp_path / "prompts.txt")}, "rows": 5, "ratio": 0.2, "max_new_tokens": 5,
                 "keep_unfinished": True}
    chat = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}] * 40
    ctx = _context(tmp_path, toy_dir / "model", rehearsal, data=chat)
    rows = train_rows(ctx).select(range(40, 50))  # after the stage's own 40 rows: 10 rehearsal rows
    tokenizer, model = _model(toy_dir / "model")
    for row in rows:
        user, answer = row["messages"]
        assert user["role"] == "user" and user["content"] in PROMPTS and answer["role"] == "assistant"
        ids = tokenizer.apply_chat_template([user], add_generation_prompt=True, tokenize=True, return_dict=True)
        assert ids["input_ids"][-1] == tokenizer.convert_tokens_to_ids("<|assistant|>")
        assert answer["content"] == _direct_greedy(tokenizer, model, ids["input_ids"], 5)[0]


@pytest.fixture
def model_that_sometimes_stops(toy_dir, tmp_path):
    """The toy model with EOS's output row made a copy (x1.05) of the token a greedy answer switches to
    part-way: wherever that token would win, EOS wins instead, so that answer ends early, after some
    text, and others never end (on the toy, 'sort 31 =' turns from one repeated token to another)."""
    tokenizer, model = _model(toy_dir / "model")
    for prompt in PROMPTS:
        answer = model.generate(torch.tensor([tokenizer(prompt)["input_ids"]]), do_sample=False, max_new_tokens=8,
                                pad_token_id=tokenizer.pad_token_id)[0, -8:].tolist()
        switched = [token for token in answer if token != answer[0]]
        if switched:
            break
    with torch.no_grad():
        model.lm_head.weight[tokenizer.eos_token_id] = 1.05 * model.lm_head.weight[switched[0]]
    model.save_pretrained(tmp_path / "stops")
    tokenizer.save_pretrained(tmp_path / "stops")
    return tmp_path / "stops"


def test_answers_that_never_reach_eos_are_dropped(tmp_path, model_that_sometimes_stops):
    rehearsal = {"prompts": {"stages": ["first"]}, "rows": len(PROMPTS), "ratio": 0.25, "max_new_tokens": 8}
    ctx = _context(tmp_path, model_that_sometimes_stops, rehearsal)
    rows = rehearsal_rows(ctx, RehearsalSpec(**rehearsal), "plain")
    tokenizer, model = _model(model_that_sometimes_stops)
    direct = {p: _direct_greedy(tokenizer, model, tokenizer(p)["input_ids"], 8) for p in PROMPTS}
    ended = {p: text for p, (text, stopped) in direct.items() if stopped and text}
    assert 0 < len(ended) < len(PROMPTS), direct  # the constructed case has both kinds
    assert dict(zip(rows["prompt"], rows["completion"], strict=True)) == ended
    info = json.loads((ctx.stage_dir / INFO_FILE).read_text())
    assert info["rows"] == len(ended) and info["prompts"] == len(PROMPTS) and info["source"] == "stages first"


def test_dropped_answers_are_counted_by_why_they_were_dropped(caplog):
    """Empty answers (an instruct model asked in plain text often ends at once) are not blamed on
    max_new_tokens: the warning and the error say how many were empty and how many were cut."""
    ctx = SimpleNamespace(spec=SimpleNamespace(name="later"))
    spec = RehearsalSpec(prompts={"stages": ["first"]}, ratio=0.25, max_new_tokens=8)
    empty, cut, good = ({"completion": "", "finished": True}, {"completion": " 1 2", "finished": False},
                        {"completion": " 3", "finished": True})
    with caplog.at_level(logging.WARNING):
        _check_rows(ctx, spec, [empty] * 5 + [cut] * 2 + [good], kept=1)
    assert "keeps 1 of 8" in caplog.text and "5 were empty" in caplog.text and "chat template" in caplog.text
    assert "2 did not end at EOS within max_new_tokens=8" in caplog.text
    with pytest.raises(UserError, match=r"none of the 3 answers is usable: 3 were empty") as refused:
        _check_rows(ctx, spec, [empty] * 3, kept=0)
    assert "max_new_tokens" not in str(refused.value)
    caplog.clear()
    _check_rows(ctx, spec, [good] * 2 + [empty], kept=2)  # most kept: nothing to say
    assert caplog.text == ""


def test_cached_rows_are_reused_on_resume(tmp_path, toy_dir, counted):
    rehearsal = {"prompts": {"stages": ["first"]}, "rows": 5, "ratio": 0.25, "max_new_tokens": 4, "keep_unfinished": True}
    ctx = _context(tmp_path, toy_dir / "model", rehearsal)
    first = rehearsal_rows(ctx, RehearsalSpec(**rehearsal), "plain")
    assert len(counted) == 5
    written = (ctx.stage_dir / ROWS_FILE).stat().st_mtime_ns
    again = rehearsal_rows(ctx, RehearsalSpec(**rehearsal), "plain")
    assert len(counted) == 5, "the second run asked the model again"
    assert again.to_list() == first.to_list() and (ctx.stage_dir / ROWS_FILE).stat().st_mtime_ns == written
    longer = {**rehearsal, "max_new_tokens": 5}  # other settings: the cache no longer fits, so it is redone
    rehearsal_rows(ctx, RehearsalSpec(**longer), "plain")
    assert len(counted) == 10


def test_interrupted_generation_continues_with_the_unanswered_prompts(tmp_path, toy_dir, counted):
    rehearsal = {"prompts": {"stages": ["first"]}, "rows": 7, "ratio": 0.25, "max_new_tokens": 4,
                 "batch_size": 2, "keep_unfinished": True}
    ctx = _context(tmp_path, toy_dir / "model", rehearsal)
    whole = rehearsal_rows(ctx, RehearsalSpec(**rehearsal), "plain").to_list()
    answers = (ctx.stage_dir / ROWS_FILE).read_text().splitlines(keepends=True)
    # As a kill leaves it: prompts chosen, three answers flushed and half of the fourth, no final file.
    (ctx.stage_dir / GENERATING_FILE).write_text("".join(answers[:3]) + answers[3][:20], encoding="utf-8")
    (ctx.stage_dir / ROWS_FILE).unlink()
    (ctx.stage_dir / INFO_FILE).unlink()
    counted.clear()
    assert rehearsal_rows(ctx, RehearsalSpec(**rehearsal), "plain").to_list() == whole
    assert len(counted) == 7 - 3 and not (ctx.stage_dir / GENERATING_FILE).exists()


def test_mixed_dataset_holds_the_configured_shares(tmp_path, toy_dir):
    rehearsal = {"prompts": {"stages": ["first"]}, "rows": 8, "ratio": 0.25, "max_new_tokens": 3, "keep_unfinished": True}
    ctx = _context(tmp_path, toy_dir / "model", rehearsal, replay={"ratio": 0.15})
    mixed = train_rows(ctx)
    synthesized = {json.loads(line)["completion"] for line in (ctx.stage_dir / ROWS_FILE).read_text().splitlines()}
    assert not synthesized & {" new", " old"}
    kinds = Counter(c if c in (" new", " old") else "rehearsal" for c in mixed["completion"])
    assert kinds[" new"] == 90  # every row of the stage's own data, once
    assert kinds["rehearsal"] / len(mixed) == pytest.approx(0.25, abs=0.01)
    assert kinds[" old"] / len(mixed) == pytest.approx(0.15, abs=0.01)


def test_prompts_written_from_a_seed_are_the_models_own_and_fixed(tmp_path, toy_dir, counted):
    seed = "sort 3 1 2 =\nsort 9 4 =\n"
    rehearsal = {"prompts": {"seed": seed, "max_prompt_tokens": 10}, "rows": 6, "ratio": 0.25, "max_new_tokens": 4,
                 "batch_size": 6, "keep_unfinished": True}
    first = rehearsal_rows(_context(tmp_path, toy_dir / "model", rehearsal, name="one"), RehearsalSpec(**rehearsal), "plain")
    ctx = _context(tmp_path, toy_dir / "model", rehearsal, name="two")
    second = rehearsal_rows(ctx, RehearsalSpec(**rehearsal), "plain")
    prompts = first["prompt"]
    assert 0 < len(prompts) <= 6 and len(set(prompts)) == len(prompts)
    assert all(p and "\n" not in p and p not in seed.splitlines() for p in prompts)
    assert second.to_list() == first.to_list()  # seeded: the same prompts and answers in a fresh stage folder
    chosen = json.loads((ctx.stage_dir / PROMPTS_FILE).read_text())
    assert chosen["prompts"] == prompts and chosen["source"].startswith("seed")
    assert len(counted) == 2 * len(prompts)


def test_row_style_follows_the_stage_rows():
    from datasets import Dataset

    assert row_style(Dataset.from_list([{"prompt": "a", "completion": "b"}])) == "plain"
    assert row_style(Dataset.from_list([{"prompt": [{"role": "user", "content": "a"}],
                                         "completion": [{"role": "assistant", "content": "b"}]}])) == "chat"
    assert row_style(Dataset.from_list([{"messages": [{"role": "user", "content": "a"}]}])) == "messages"
    assert row_style(Dataset.from_list([{"text": "a"}])) == "text"


@pytest.mark.parametrize("section, message", [
    ({"prompts": {"seed": "x", "stages": ["a"]}, "ratio": 0.2}, "give seed (the model writes the prompts) or stages/path"),
    ({"prompts": {}, "ratio": 0.2}, "give stages (earlier stage names), path (a prompt file) or seed"),
    ({"prompts": {"path": "p.txt", "temperature": 0.7}, "ratio": 0.2}, "temperature applies to prompts written from a seed"),
    ({"prompts": {"path": "p.txt"}, "ratio": 1.0}, "less than 1"),
    ({"prompts": {"path": "p.txt"}, "ratio": 0.2, "rows": 0}, "greater than 0"),
])
def test_bad_rehearsal_sections_are_refused(section, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        RehearsalSpec(**section)


def test_replay_and_rehearsal_shares_must_leave_room_for_the_stage():
    with pytest.raises(ValueError, match=re.escape("replay.ratio + rehearsal.ratio must be below 1")):
        SFTStageSpec(name="b", kind="sft", data={"path": "x.jsonl"}, replay={"path": "o.jsonl", "ratio": 0.5},
                     rehearsal={"prompts": {"path": "p.txt"}, "ratio": 0.5})
    assert RehearsalPrompts(stages=["a"], path="p.txt").describe() == "stages a; path p.txt"


@pytest.mark.slow  # two short toy stages through the runner, twice: ~25 s on a busy 2-core machine
def test_a_run_records_the_rehearsal_and_a_resumed_stage_reuses_it(tmp_path, toy_dir, counted):
    from cpt.core.manifest import Manifest
    from cpt.recipe.load import load_recipe
    from cpt.runner.run import run_recipe
    from tests.helpers import tiny_sft_recipe, write_recipe

    recipe = tiny_sft_recipe(tmp_path, steps=2, save_steps=1, per_device_train_batch_size=4)
    recipe.pop("eval")
    recipe["stages"][1]["rehearsal"] = {"prompts": {"stages": ["a"]}, "rows": 4, "ratio": 0.25, "max_new_tokens": 4,
                                        "keep_unfinished": True}
    path = write_recipe(tmp_path / "r.yaml", recipe)
    run_dir = run_recipe(load_recipe(path), path.read_text()).run_dir
    record = Manifest.load(run_dir).stages["b"]
    assert record.metrics["rehearsal_rows"] == 4 and record.metrics["rehearsal_source"] == "stages a"
    assert len(counted) == 4
    cached = run_dir / "stages" / "b" / ROWS_FILE
    written = cached.stat().st_mtime_ns
    # As if killed after its last checkpoint: the manifest says running, the final model is not there.
    manifest = Manifest.load(run_dir)
    manifest.stages["b"].status = "running"
    manifest.save(run_dir)
    shutil.rmtree(run_dir / "stages" / "b" / "model")
    summary = run_recipe(load_recipe(path), path.read_text())
    assert summary.stage_actions == {"a": "skipped", "b": "resumed"}
    assert len(counted) == 4 and cached.stat().st_mtime_ns == written


def test_cpt_stage_gets_the_rows_as_text_in_a_domain_held_at_its_share(tmp_path, toy_dir):
    from cpt.stages.cpt import _extra_rows
    from cpt.stages.cpt_config import CPTStageSpec

    (tmp_path / "prompts.txt").write_text("\n".join(PROMPTS[:3]) + "\n", encoding="utf-8")
    (tmp_path / "docs.txt").write_text("some text\nmore text\n", encoding="utf-8")
    rehearsal = {"prompts": {"path": str(tmp_path / "prompts.txt")}, "ratio": 0.1, "max_new_tokens": 3,
                 "keep_unfinished": True}
    spec = CPTStageSpec(name="c", kind="cpt", domains=[{"name": "docs", "data": {"path": str(tmp_path / "docs.txt")}}],
                        rehearsal=rehearsal, train={"max_steps": 1})
    ctx = StageContext(spec=spec, input_model=toy_dir / "model", reference_model=toy_dir / "model",
                       stage_dir=tmp_path / "c", seed=0)
    ctx.stage_dir.mkdir()
    rows, fixed = _extra_rows(ctx)
    assert fixed == {"rehearsal": 0.1}
    answers = [json.loads(line) for line in (ctx.stage_dir / ROWS_FILE).read_text().splitlines()]
    assert sorted(rows["rehearsal"]["text"]) == sorted(a["prompt"] + a["completion"] for a in answers)
    assert {a["prompt"] for a in answers} == set(PROMPTS[:3])
