"""Rollout backends: `hf` batches prompts with left padding and the KV cache without changing what a
prompt alone would generate; `vllm` is configured into TRL's GRPOConfig as TRL reads it, refused with a
message naming the extra where it is missing, and run for real only where vLLM and CUDA both exist.
Run: pytest tests/cpt/rollouts/test_rollouts.py"""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from cpt.rollouts import RolloutSpec, grpo_generation_args, make_rollouts
from cpt.rollouts.hf import HFRollouts
from tests.helpers import run_cli, write_recipe

HAS_VLLM = importlib.util.find_spec("vllm") is not None
PROMPTS = ["sort 887805 =", "add 25+90 =", "reverse c d f e a b =", "count c in b c d b a b ="]  # 4 lengths


def test_hf_batched_greedy_matches_one_prompt_at_a_time(toy_dir):
    rollouts = HFRollouts(toy_dir / "model", batch_size=64)
    batched = rollouts.sample(PROMPTS, k=1, max_new_tokens=8, temperature=0.0)
    alone = [rollouts.sample([p], k=1, max_new_tokens=8, temperature=0.0)[0] for p in PROMPTS]
    assert batched == alone
    rollouts.use_cache = False
    assert rollouts.sample(PROMPTS, k=1, max_new_tokens=8, temperature=0.0) == batched


def test_hf_samples_k_completions_per_prompt_in_order(toy_dir):
    rollouts = HFRollouts(toy_dir / "model", batch_size=6)  # 6 // k=3: two prompts per generate call
    torch.manual_seed(0)
    groups = rollouts.sample(PROMPTS, k=3, max_new_tokens=6, temperature=1.0)
    assert [len(g) for g in groups] == [3, 3, 3, 3]
    assert any(len(set(g)) > 1 for g in groups), "temperature 1.0 should vary the completions"
    greedy = rollouts.sample(PROMPTS, k=3, max_new_tokens=6, temperature=0.0)
    assert all(len(set(g)) == 1 for g in greedy) and [g[0] for g in greedy] == [
        rollouts.sample([p], k=1, max_new_tokens=6, temperature=0.0)[0][0] for p in PROMPTS]


def test_backend_choice_becomes_grpo_config_fields(tmp_path):
    from trl import GRPOConfig

    assert grpo_generation_args(RolloutSpec()) == {"use_vllm": False}
    server = grpo_generation_args(RolloutSpec(backend="vllm", vllm_mode="server", vllm_server="http://h:8000"))
    colocate = grpo_generation_args(RolloutSpec(backend="vllm"))
    for fields in (server, colocate):  # TRL accepts them as its own config (it checks vllm at trainer start)
        config = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", **fields)
        assert config.use_vllm and config.vllm_mode == fields["vllm_mode"]
    assert GRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", **server).vllm_server_base_url == "http://h:8000"


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here")
def test_vllm_rollouts_without_vllm_fail_before_the_run(tmp_path, toy_dir):
    recipe = {"run": {"name": "v", "output_dir": str(tmp_path)},
              "stages": [{"name": "g", "kind": "grpo", "data": {"toy": "sorting"}, "rollout": {"backend": "vllm"}}]}
    result = run_cli("plan", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert result.returncode == 2
    assert "stage g: rollout.backend is 'vllm' but vLLM is not installed" in result.stderr
    assert "pip install 'cpt-pipeline[vllm]'" in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(not (HAS_VLLM and torch.cuda.is_available()), reason="needs vLLM and a CUDA GPU (not on CI)")
def test_vllm_rollouts_and_grpo_colocate_on_a_gpu(tmp_path, toy_dir):
    groups = make_rollouts(RolloutSpec(backend="vllm"), toy_dir / "model").sample(PROMPTS, 4, 8, 1.0)
    assert [len(g) for g in groups] == [4] * len(PROMPTS)
    train = {"max_steps": 2, "per_device_train_batch_size": 8, "num_generations": 4, "max_completion_length": 8}
    recipe = {"run": {"name": "v", "output_dir": str(tmp_path)}, "stages": [
        {"name": "g", "kind": "grpo", "data": {"toy": "sorting"}, "rollout": {"backend": "vllm"}, "train": train}]}
    result = run_cli("run", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert result.returncode == 0, result.stderr[-2000:]
    log = json.loads((tmp_path / "v" / "stages" / "g" / "train_log.json").read_text())
    assert any("kl" in entry for entry in log)
