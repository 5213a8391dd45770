"""OSF with GRPO's vLLM rollouts: TRL's own weight sync (trl.generation.vllm_generation.VLLMGeneration,
the real class) fails on an OSF model, ours sends the merged weights and leaves the model as it was.

vLLM cannot run here (it needs CUDA), so a recorder stands in for the vLLM engine that TRL's colocate mode
loads the weights into; everything up to that call is TRL's code. The guard installs the sync when a
trainer has TRL's vLLM generation (OSFGuard.attach), as GRPOTrainer has with use_vllm.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from trl.distributed import DistributedBackend
from trl.generation.vllm_generation import VLLMGeneration

from cpt.guards.config import OSFSpec
from cpt.guards.osf import OSFGuard


class RecordingEngine:
    """Stands in for vLLM's engine in colocate mode: keeps the weights TRL loads into it."""

    def __init__(self):
        self.weights: dict[str, torch.Tensor] = {}
        runner = SimpleNamespace(model=SimpleNamespace(load_weights=self._load))
        self.llm_engine = SimpleNamespace(model_executor=SimpleNamespace(driver_worker=SimpleNamespace(model_runner=runner)))

    def _load(self, pairs):
        self.weights.update({name: tensor.detach().clone() for name, tensor in pairs})

    def reset_prefix_cache(self):
        pass


def trl_generation(model) -> VLLMGeneration:
    """TRL's VLLMGeneration for `model` in colocate mode, its vLLM engine a recorder (its __init__ would start vLLM)."""
    generation = object.__new__(VLLMGeneration)
    accelerator = Accelerator(cpu=True)
    generation.model, generation.accelerator, generation._dist = model, accelerator, DistributedBackend(accelerator)
    generation.mode, generation.enable_sleep_mode, generation.llm = "colocate", False, RecordingEngine()
    return generation


@pytest.fixture
def trained_osf(toy_dir):
    """The toy under OSF with its trainable factors moved (as a few training steps would)."""
    guard = OSFGuard(OSFSpec(method="osf"))
    model = guard.prepare_model(AutoModelForCausalLM.from_pretrained(toy_dir / "model", dtype=torch.float32))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad:
                param.add_(0.01 * torch.randn(param.shape, generator=generator))
    return guard, model, load_file(str(toy_dir / "model" / "model.safetensors"))


def test_trls_own_sync_fails_on_an_osf_model(trained_osf):
    _, model, _ = trained_osf
    with pytest.raises(NotImplementedError, match="OSF models do not support unmerging"):
        trl_generation(copy.deepcopy(model)).sync_weights()


def test_the_guard_sends_vllm_the_merged_weights_and_leaves_the_model_unmerged(trained_osf):
    guard, model, start = trained_osf
    ids = torch.tensor([[1, 2, 3, 4]])
    before = model(ids).logits.detach()
    generation = trl_generation(model)
    guard.attach(SimpleNamespace(vllm_generation=generation))
    generation.sync_weights()

    expected = copy.deepcopy(model).merge_and_unload().state_dict()
    sent = generation.llm.weights
    assert sent.keys() == {k for k in expected if k != "lm_head.weight" or not model.config.tie_word_embeddings}
    changed = 0
    for name, tensor in sent.items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=1e-6, msg=name)
        changed += not torch.equal(tensor, start[name])
    assert changed >= 7 * model.config.num_hidden_layers  # every adapted projection went out merged
    assert not any(getattr(m, "merged", False) for m in model.modules() if hasattr(m, "osf_svd_params"))
    torch.testing.assert_close(model(ids).logits, before)  # training goes on from the same model
