"""The support matrix, run: for each launcher a CPU runs (one process; two over gloo with DDP, ZeRO-2 and
ZeRO-3), one recipe holds every guard x stage kind combination the table says runs (cpt/recipe/
support_matrix.py), packed into 2-step stages (tests/support_matrix_stages.py), and each stage must train
and write a plain model that loads in transformers. One launch per launcher: a launch costs ~20 s of
start-up on 2 cores, a stage a few seconds.

Checked for every launcher: each stage's steps, its model's keys and shapes, that it moved (where its data
gives a gradient), O-LoRA's orthogonality term falling and its subspaces growing stage by stage (under ZeRO-3
too, every parameter partitioned; its LoRA adapters are merged from gathered shards at save, the path a
`peft:` LoRA stage takes), OSF's update clear of the preserved spectrum, the KL anchor
acting, the RFT filter's kept prompts (sampled over every rank), and that only rank 0 reports. The refused
combinations are planned in tests/cpt/recipe/test_support_matrix.py.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from cpt.guards.support import Launch
from cpt.recipe.load import load_recipe
from cpt.runner.run import run_recipe
from tests.helpers import REPO, one_thread, write_recipe
from tests.support_matrix_stages import BATCH, FILTER_KEPT, OLORA_R, ROWS, STEPS, launcher_recipe

pytestmark = [pytest.mark.slow]

CONFIGS = {Launch(2): "ddp", Launch(2, 2): "zero2", Launch(2, 3): "zero3"}



def test_one_process_runs_every_supported_combination(tmp_path, toy_dir, caplog):
    recipe = launcher_recipe(Launch(1), tmp_path, "one")
    path = write_recipe(tmp_path / "one.yaml", recipe)
    with one_thread(), caplog.at_level(logging.INFO, logger="cpt"):
        summary = run_recipe(load_recipe(path), path.read_text())
    with one_thread():
        check_run(tmp_path / "one", recipe, Launch(1), toy_dir, caplog.text + "\n".join(summary.lines))


@pytest.mark.multiprocess
@pytest.mark.parametrize("launch", list(CONFIGS), ids=list(CONFIGS.values()))
def test_two_processes_run_every_supported_combination(launch, tmp_path, toy_dir):
    name = CONFIGS[launch]
    recipe = launcher_recipe(launch, tmp_path, name)
    config = REPO / "recipes" / "launch" / f"{name}.yaml" if launch.zero != 3 else partitioning_zero3(tmp_path)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "--num_processes", "2",
               "-m", "cpt", "run", str(write_recipe(tmp_path / f"recipe_{name}.yaml", recipe))]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    with one_thread():
        check_run(tmp_path / name, recipe, launch, toy_dir, result.stdout + result.stderr)
    if launch.zero is not None:
        assert "deepspeed" in (result.stdout + result.stderr).lower()
        # DeepSpeed wrote the checkpoint: one file per rank
        shards = list((tmp_path / name / "stages" / "sft_none" / "checkpoints").rglob("*zero_pp_rank_1*"))
        assert shards, "no per-rank shards: DeepSpeed was not in use"


def partitioning_zero3(folder) -> str:
    """recipes/launch/zero3.yaml with every parameter partitioned. DeepSpeed keeps tensors below
    stage3_param_persistence_threshold (1e5 elements by default) whole on every rank, which is every tensor
    of the toy but its embedding: without this the toy would hardly test ZeRO-3. Given as a DeepSpeed config
    file, as a user would to set it (where accelerate puts the stage in that file, not the environment)."""
    shipped = yaml.safe_load((REPO / "recipes" / "launch" / "zero3.yaml").read_text())
    zero = shipped.pop("deepspeed_config")
    shipped.pop("mixed_precision")  # with a config file, accelerate refuses its own precision setting
    optimization = {"stage": 3, "stage3_param_persistence_threshold": 0,
                    "stage3_gather_16bit_weights_on_model_save": zero["zero3_save_16bit_model"],
                    "offload_optimizer": {"device": zero["offload_optimizer_device"]},
                    "offload_param": {"device": zero["offload_param_device"]}}
    ds_config = {"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto",
                 "gradient_accumulation_steps": "auto", "gradient_clipping": "auto", "zero_optimization": optimization}
    (folder / "ds_zero3.json").write_text(json.dumps(ds_config))
    shipped["deepspeed_config"] = {"deepspeed_config_file": str(folder / "ds_zero3.json"),
                                   "zero3_init_flag": zero["zero3_init_flag"],
                                   "deepspeed_multinode_launcher": zero["deepspeed_multinode_launcher"]}
    (folder / "zero3.yaml").write_text(yaml.safe_dump(shipped))
    return str(folder / "zero3.yaml")


def check_run(run, recipe: dict, launch: Launch, toy_dir, stdout: str) -> None:
    """`stdout`: what the run said, its progress (stderr) and its summary (stdout)."""
    stages = recipe["stages"]
    expected = f"launch: {launch.processes} process{'es' if launch.processes > 1 else ''}"
    assert expected + (f", DeepSpeed ZeRO-{launch.zero}" if launch.zero else ", DDP" if launch.processes > 1 else "") \
        in stdout
    assert stdout.count(f"run {recipe['run']['name']}:") == 1, "only rank 0 prints the summary"
    assert stdout.count("launch: ") == 1, "only the main process logs its progress (cpt/core/log_setup.py)"
    manifest = json.loads((run / "manifest.json").read_text())["stages"]
    assert {n: (s["status"], s["global_step"]) for n, s in manifest.items()} == {
        s["name"]: ("done", STEPS) for s in stages}
    # Each rank takes BATCH rows per step.
    epoch = STEPS * BATCH * launch.processes / ROWS
    assert manifest["sft_none"]["metrics"]["epoch"] == pytest.approx(epoch, rel=0.05)
    if launch.zero == 3:  # the evaluation after a ZeRO-3 stage, on the main process alone (it used to hang)
        matrix = json.loads((run / "eval" / "matrix.json").read_text())
        assert [row["checkpoint"] for row in matrix["rows"]] == [stages[-1]["name"]]
    _check_models(run, stages, manifest, toy_dir, load_all=launch.zero is not None)
    _check_guards(run, stages)
    for stage in (s for s in stages if "filter" in s):
        record = json.loads((run / "stages" / stage["name"] / "rft_filter.json").read_text())
        assert (record["kept_indices"], record["processes"]) == (FILTER_KEPT, launch.processes), stage["name"]


def _check_models(run, stages: list[dict], manifest: dict, toy_dir, load_all: bool) -> None:
    """Every stage's model: the toy's tensors, changed where it had a gradient, loadable by plain transformers
    (every stage's under DeepSpeed, whose saves gather; the last one's otherwise: 0.4 s a load)."""
    parent = load_file(str(toy_dir / "model" / "model.safetensors"))
    for stage in stages:
        folder = run / "stages" / stage["name"] / "model"
        weights = load_file(str(folder / "model.safetensors"))
        assert not [f.name for f in folder.iterdir() if f.suffix in (".bin", ".pt", ".pth", ".pkl")], "a pickle"
        assert weights.keys() == parent.keys() and all(weights[k].shape == parent[k].shape for k in parent)
        merge = manifest[stage["name"]].get("merge") or {}
        # plain GRPO's exact_match is 0 on every toy completion: no advantage, no gradient; a merge may keep alpha 0
        if stage["kind"] != "grpo" or "filter" in stage:
            moved = max((weights[k] - parent[k]).abs().max().item() for k in parent)
            assert (moved > 0) == (merge.get("alpha", 1.0) > 0), f"{stage['name']}: moved {moved}, merge {merge}"
            if stage.get("guard", {}).get("method") == "osf":  # (without a gradient only float noise moves)
                _check_osf_update(parent, weights, stage["name"])
            if stage.get("guard", {}).get("method") == "gpm":
                _check_gpm(parent, weights, stage, toy_dir)
            if "density" in stage.get("guard", {}):
                _check_density(parent, weights, stage)
        if load_all or stage is stages[-1]:
            model = AutoModelForCausalLM.from_pretrained(folder)
            assert torch.isfinite(model(torch.tensor([[1, 2, 3]])).logits).all(), stage["name"]
        parent = weights


def _check_density(start: dict, end: dict, stage: dict) -> None:
    """The freeze guard's density: each weight above the frozen layers moved in at most that share of its entries,
    which holds on several ranks only if every rank chose the same ones (the reduced gradient is their union)."""
    density, frozen = stage["guard"]["density"], f"model.layers.{stage['guard']['layers'] - 1}."
    upper = [k for k in start if k.startswith("model.layers.") and not k.startswith(frozen)]
    shares = {k: (end[k] != start[k]).float().mean().item() for k in upper}
    assert all(share <= density + 1 / start[k].numel() for k, share in shares.items()), (stage["name"], shares)
    assert max(shares.values()) > 0, stage["name"]


def _check_gpm(start: dict, end: dict, stage: dict, toy_dir) -> None:
    """GPM: each linear weight still maps the protected text's inputs as at the stage's start (W U = W0 U), the
    embeddings (the tied head) and the norms stay; also on several ranks and under ZeRO-2, where the correction
    after each step goes through the optimizer's fp32 master copy."""
    from transformers import AutoTokenizer

    from cpt.guards.gpm import input_bases, protected_passages

    model = AutoModelForCausalLM.from_pretrained(toy_dir / "model", dtype=torch.float32)
    model.load_state_dict(start, strict=False)  # the stage's start: the toy, or the stage before
    passages = protected_passages(stage["guard"]["text"], AutoTokenizer.from_pretrained(toy_dir / "model"))
    names = {id(module): name for name, module in model.named_modules()}
    for layer, basis in input_bases(model, passages, 0.99, "cpu"):
        key = f"{names[id(layer)]}.weight"
        assert torch.allclose(end[key] @ basis, start[key] @ basis, atol=1e-4), (stage["name"], key)
    linear = [k for k in start if k.endswith("proj.weight")]
    assert all(torch.equal(end[k], start[k]) for k in start if k not in linear), stage["name"]
    assert any(not torch.equal(end[k], start[k]) for k in linear), stage["name"]


def _check_osf_update(start: dict, end: dict, name: str) -> None:
    """OSF's default keeps the top half of each matrix's spectrum: the update has no component there."""
    for key in (k for k in start if k.endswith("proj.weight")):
        delta = end[key] - start[key]
        if delta.norm() == 0:
            continue
        u, _, vh = torch.linalg.svd(start[key], full_matrices=False)
        k = min(start[key].shape) // 2
        assert (u[:, :k].T @ delta).norm() < 1e-3 * delta.norm(), f"{name} {key}"
        assert (delta @ vh[:k].T).norm() < 1e-3 * delta.norm(), f"{name} {key}"


def _check_guards(run, stages: list[dict]) -> None:
    olora = [s["name"] for s in stages if s.get("guard", {}).get("method") == "olora"]
    for count, name in enumerate(olora, start=1):
        subspaces = load_file(str(run / "stages" / name / "model" / "olora_subspaces.safetensors"))
        assert subspaces["model.layers.0.self_attn.q_proj"].shape[0] == OLORA_R * count, name
        if count > 1:  # earlier subspaces to keep clear of; the first step's LoRA gradient is the term's alone
            terms = _logged(run, name, "guard/olora")
            assert len(terms) == STEPS and terms[-1] < terms[0], f"{name}: {terms}"
    for stage in (s for s in stages if s.get("guard", {}).get("method") == "kl_anchor"):
        anchor = _logged(run, stage["name"], "guard/kl_anchor")  # 0 at the start (the model is its anchor)
        assert len(anchor) == STEPS and anchor[0] < 1e-6 < anchor[-1], f"{stage['name']}: {anchor}"


def _logged(run, stage: str, key: str) -> list[float]:
    return [e[key] for e in json.loads((run / "stages" / stage / "train_log.json").read_text()) if key in e]
