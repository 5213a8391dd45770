"""Between stages nothing of the previous stage stays alive: its trainer and model (and with them its
optimizer and any DeepSpeed engine) are gone before the next stage loads its model and before the
in-process evaluation loads the checkpoint (cpt/core/memory.py, called by runner/lineage.py). The garbage
collector's automatic runs are switched off, so only the runner's own collection can free reference cycles.
The CUDA cache (no GPU here) is stood in for by a recorder of empty_cache calls.
"""

from __future__ import annotations

import gc
import weakref

import pytest

from cpt.recipe.load import load_recipe
from cpt.runner import lineage
from cpt.runner.evaluation import CheckpointEvaluator
from cpt.runner.run import run_recipe
from cpt.stages import training
from tests.helpers import one_thread, write_recipe


@pytest.mark.slow  # three stages and an evaluation in process: ~20 s
def test_a_stage_trainer_and_model_are_freed_before_the_next_stage_and_the_eval(tmp_path, toy_dir, monkeypatch):
    alive: list[weakref.ref] = []  # the trainers and models of the stages so far
    checked: list[str] = []

    def build_trainer(trainer_cls, ctx, model, tokenizer, **kwargs):
        trainer = real_build_trainer(trainer_cls, ctx, model, tokenizer, **kwargs)
        alive.extend([weakref.ref(trainer), weakref.ref(trainer.model)])
        return trainer

    def run_sft(ctx):
        assert not [ref for ref in alive if ref() is not None], f"{ctx.spec.name}: the last stage's objects are alive"
        checked.append(ctx.spec.name)
        return real_run_sft(ctx)

    def evaluate(self, model_dir, results_dir):
        assert not [ref for ref in alive if ref() is not None], f"evaluating {model_dir}: a stage's objects are alive"
        checked.append(f"eval {model_dir.parent.name}")
        return real_evaluate(self, model_dir, results_dir)

    real_build_trainer, real_run_sft, real_evaluate = training.build_trainer, lineage.STAGE_RUNNERS["sft"], \
        CheckpointEvaluator.__call__
    monkeypatch.setattr("cpt.stages.sft.build_trainer", build_trainer)
    monkeypatch.setitem(lineage.STAGE_RUNNERS, "sft", run_sft)
    monkeypatch.setattr(CheckpointEvaluator, "__call__", evaluate)
    train = {"max_steps": 2, "per_device_train_batch_size": 2, "max_length": 32, "save_steps": 100,
             "disable_tqdm": True}
    stages = [{"name": name, "kind": "sft", "data": {"toy": "date_format", "max_examples": 8}, "train": train,
               "eval": name == "c", **({"guard": {"method": "osf"}} if name == "b" else {})} for name in "abc"]
    recipe = {"run": {"name": "m", "output_dir": str(tmp_path)}, "stages": stages,
              "eval": {"tasks": ["date_format"], "max_examples": 2, "max_new_tokens": 4, "base": False}}
    path = write_recipe(tmp_path / "r.yaml", recipe)
    gc.collect()
    gc.disable()
    try:
        with one_thread():
            run_recipe(load_recipe(path), path.read_text())
    finally:
        gc.enable()
    assert checked == ["a", "b", "c", "eval c"]
    assert len(alive) == 6 and not [ref for ref in alive if ref() is not None]


@pytest.mark.parametrize("cuda", [False, True])
def test_release_memory_collects_cycles_and_empties_the_cuda_cache(cuda, monkeypatch):
    from cpt.core.memory import release_memory

    emptied = []
    monkeypatch.setattr("torch.cuda.is_available", lambda: cuda)
    monkeypatch.setattr("torch.cuda.empty_cache", lambda: emptied.append(True))

    class Node:
        pass

    node = Node()
    node.self = node  # a cycle: only the collector frees it
    ref = weakref.ref(node)
    gc.disable()
    try:
        del node
        assert ref() is not None
        release_memory()
        assert ref() is None
    finally:
        gc.enable()
    assert emptied == ([True] if cuda else [])
