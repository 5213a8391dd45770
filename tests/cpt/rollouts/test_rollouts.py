"""Rollout backends: `hf` batches prompts with left padding and the KV cache without changing what a
prompt alone would generate, and renders chat prompts with the chat template; `vllm` is configured into
TRL's GRPOConfig as TRL reads it, refused with a message naming the extra where it is missing, and run for
real only where vLLM and CUDA both exist (here a stand-in LLM checks what the backend hands vLLM).
Run: python -m pytest tests/cpt/rollouts/test_rollouts.py"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from types import SimpleNamespace

import pytest
import torch

from cpt.rollouts import RolloutSpec, grpo_generation_args, make_rollouts
from cpt.rollouts.hf import HFRollouts
from cpt.rollouts.prompts import prompt_token_ids
from cpt.rollouts.vllm_backend import VLLMRollouts
from tests.helpers import run_cli, write_recipe

HAS_VLLM = importlib.util.find_spec("vllm") is not None
PROMPTS = ["sort 887805 =", "add 25+90 =", "reverse c d f e a b =", "count c in b c d b a b ="]  # 4 lengths
CHATS = [[{"role": "user", "content": p}] for p in PROMPTS]


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


def test_hf_top_k_1_samples_only_the_greedy_completion(toy_dir):
    rollouts = HFRollouts(toy_dir / "model", batch_size=64)
    torch.manual_seed(0)
    sampled = rollouts.sample_completions(PROMPTS, k=3, max_new_tokens=6, temperature=1.0, sampling={"top_k": 1})
    greedy = rollouts.sample(PROMPTS, k=1, max_new_tokens=6, temperature=0.0)
    assert [[c.text for c in g] for g in sampled] == [[g[0]] * 3 for g in greedy]


def test_hf_chat_prompts_use_the_chat_template_and_ids_end_at_eos(toy_dir):
    rollouts = HFRollouts(toy_dir / "model", batch_size=64)
    rendered = [rollouts.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in CHATS]
    assert rendered[0] == "<|user|>sort 887805 =<|end|><|assistant|>"
    chat = rollouts.sample_completions(CHATS, k=1, max_new_tokens=8, temperature=0.0)
    assert [g[0].text for g in chat] == [g[0] for g in rollouts.sample(rendered, k=1, max_new_tokens=8, temperature=0.0)]
    eos = rollouts.tokenizer.eos_token_id
    for (completion,) in chat:
        assert 0 < len(completion.ids) <= 8 and eos not in completion.ids[:-1]
        assert completion.ids[-1] == eos or len(completion.ids) == 8
        assert rollouts.tokenizer.decode(completion.ids, skip_special_tokens=True) == completion.text


def test_vllm_backend_hands_vllm_the_template_rendered_token_ids(toy_dir, monkeypatch):
    """A stand-in for vLLM (it cannot run here): it records what the backend passes to LLM.generate."""
    calls = []

    class FakeLLM:
        def generate(self, prompts, params):
            calls.append((prompts, params))
            return [SimpleNamespace(outputs=[SimpleNamespace(text="ok", token_ids=(7, 2))] * params.n) for _ in prompts]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=lambda **kw: SimpleNamespace(**kw)))
    rollouts = VLLMRollouts(toy_dir / "model", llm=FakeLLM())
    groups = rollouts.sample_completions(CHATS, k=3, max_new_tokens=5, temperature=1.0)
    prompts, params = calls[0]
    assert prompts == [{"prompt_token_ids": ids} for ids in prompt_token_ids(rollouts.tokenizer, CHATS)]
    assert rollouts.tokenizer.decode(prompts[0]["prompt_token_ids"]) == "<|user|>sort 887805 =<|end|><|assistant|>"
    assert (params.n, params.max_tokens, params.temperature) == (3, 5, 1.0)
    rollouts.sample_completions(CHATS, k=3, max_new_tokens=5, temperature=1.0,
                                sampling={"top_p": 0.9, "top_k": 0, "min_p": None, "repetition_penalty": 1.0})
    assert (calls[1][1].top_p, calls[1][1].top_k, calls[1][1].repetition_penalty) == (0.9, 0, 1.0)
    assert not hasattr(calls[1][1], "min_p")  # None: vLLM's own default
    assert [[(c.text, c.ids) for c in g] for g in groups] == [[("ok", [7, 2])] * 3] * len(CHATS)


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
