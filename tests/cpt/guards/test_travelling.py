"""A guard's memory travels with every model folder of the run, through the real runner on the toy:
- O-LoRA -> plain sft -> sft with LoRA (merged) -> O-LoRA: the middle stages' folders carry the first stage's
  subspace file unchanged, and the last O-LoRA stage's orthogonality term pairs its new A with the first's;
- OSF (grow, preserve_updates) -> plain sft, then a second run from that model: the plain folder carries OSF's
  record and update directions, and the next run's OSF stage counts itself second and appends its update."""

from __future__ import annotations

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from cpt.guards.config import OLoRASpec
from cpt.guards.olora import OLoRAGuard
from cpt.guards.travelling import OLORA_SUBSPACES, OSF_RECORD, OSF_UPDATES, carry_forward, read_osf_record
from cpt.recipe.load import load_recipe
from cpt.runner.run import run_recipe
from tests.helpers import write_recipe

TRAIN = {"max_steps": 2, "per_device_train_batch_size": 4, "max_length": 32, "save_steps": 2, "disable_tqdm": True}
R = 4


def test_carry_forward_copies_only_what_the_stage_did_not_write(tmp_path):
    source, folder = tmp_path / "in", tmp_path / "out"
    source.mkdir(), folder.mkdir()
    (source / OLORA_SUBSPACES).write_bytes(b"earlier")
    (source / OSF_RECORD).write_text("earlier")
    (folder / OSF_RECORD).write_text("this stage's")
    assert carry_forward(source, folder) == [OLORA_SUBSPACES]
    assert (folder / OLORA_SUBSPACES).read_bytes() == b"earlier"
    assert (folder / OSF_RECORD).read_text() == "this stage's"


def test_olora_subspaces_pass_through_plain_stages_to_the_next_olora_stage(toy_dir, tmp_path):
    guard = {"method": "olora", "r": R}
    sft = {"kind": "sft", "data": {"toy": "addition", "max_examples": 8}, "train": TRAIN}
    stages = [{"name": "a", **sft, "guard": guard}, {"name": "plain", **sft},
              {"name": "lora", **sft, "peft": {"r": 2}}, {"name": "d", **sft, "guard": guard}]
    path = write_recipe(tmp_path / "r.yaml", {"run": {"name": "r", "output_dir": str(tmp_path)},
                                               "model": {"name_or_path": "toy"}, "stages": stages})
    folders = run_recipe(load_recipe(path), path.read_text(), with_eval=False).run_dir / "stages"

    first = load_file(str(folders / "a" / "model" / OLORA_SUBSPACES))
    assert first and all(a.shape[0] == R for a in first.values())
    for middle in ("plain", "lora"):
        carried = load_file(str(folders / middle / "model" / OLORA_SUBSPACES))
        assert carried.keys() == first.keys() and all(torch.equal(carried[k], first[k]) for k in first)

    # What stage d's guard saw (it reads its input model, lora's folder): every earlier A, r rows per module.
    seen = OLoRAGuard(OLoRASpec(**guard), folders / "lora" / "model")
    seen.prepare_model(AutoModelForCausalLM.from_pretrained(folders / "lora" / "model", dtype=torch.float32))
    assert sorted(seen.earlier) == sorted(first) and len(seen.pairs) == len(first)
    for (a_new, prev), key in zip(seen.pairs, seen.new_a):  # (A_new, A_prev) per adapted matrix, in that order
        assert a_new is seen.new_a[key] and torch.equal(prev, first[key])
    last = load_file(str(folders / "d" / "model" / OLORA_SUBSPACES))
    for key, a in first.items():  # d appended its own A below a's
        assert last[key].shape[0] == 2 * R and torch.equal(last[key][:R], a)


def test_osf_record_and_updates_pass_through_a_plain_stage_and_into_the_next_run(toy_dir, tmp_path):
    guard = {"method": "osf", "preserved": 0.3, "grow": 0.2, "preserve_updates": True, "update_rank": 2}
    sft = {"kind": "sft", "data": {"toy": "addition", "max_examples": 8}, "train": TRAIN}

    def run(name: str, base: str, stages: list[dict]):
        path = write_recipe(tmp_path / f"{name}.yaml", {"run": {"name": name, "output_dir": str(tmp_path)},
                                                         "model": {"name_or_path": base}, "stages": stages})
        return run_recipe(load_recipe(path), path.read_text(), with_eval=False).run_dir / "stages"

    first = run("one", "toy", [{"name": "a", **sft, "guard": guard}, {"name": "plain", **sft}])
    for name in (OSF_RECORD, OSF_UPDATES):
        assert (first / "plain" / "model" / name).read_bytes() == (first / "a" / "model" / name).read_bytes()
    # A continuation from the earlier run's model counts its OSF stages from the record, not from the recipe.
    second = run("two", str(first / "plain" / "model"), [{"name": "b", **sft, "guard": guard}])
    record = read_osf_record(second / "b" / "model")
    assert [(e["stage"], e["preserved"]) for e in record] == [("a", 0.3), ("b", 0.5)]
    updates = load_file(str(second / "b" / "model" / OSF_UPDATES))
    assert updates and all(t.shape[0] == 4 for t in updates.values())  # a's 2 directions, then b's
