"""The merge guard's interpolation on saved model folders: alpha 0 is the start, 1 the trained model, 0.5 the
midpoint; dtypes, shards and the files that travel with a model are kept; the in-memory path agrees."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from cpt.guards.merge import INDEX_FILE, Interpolation, read_weights, weight_files, write_merged
from cpt.guards.olora import SUBSPACES_FILE

CONFIG = {"vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
          "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 32, "tie_word_embeddings": True}


def _model(seed: int, dtype=torch.float32) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**CONFIG)).to(dtype)


@pytest.fixture
def folders(tmp_path):
    """(start, trained): two tiny Llamas; the trained one in bf16, with files that travel with it."""
    start, trained = tmp_path / "start", tmp_path / "trained"
    _model(0).save_pretrained(start)
    _model(1, torch.bfloat16).save_pretrained(trained)
    save_file({"model.layers.0.self_attn.q_proj": torch.randn(4, 16)}, str(trained / SUBSPACES_FILE))
    (trained / "notes.txt").write_text("kept as is\n")
    return start, trained


@pytest.mark.parametrize("alpha", [0.0, 1.0, 0.5])
def test_written_folder_is_start_plus_alpha_times_the_update(folders, tmp_path, alpha):
    start, trained = folders
    write_merged(start, trained, alpha, tmp_path / "merged")
    before, after, merged = read_weights(start), read_weights(trained), read_weights(tmp_path / "merged")
    assert set(merged) == set(after)
    for key, value in merged.items():
        assert value.dtype == torch.bfloat16  # the trained model's dtype, not fp32
        expected = before[key].float() + alpha * (after[key].float() - before[key].float())
        assert torch.equal(value, expected.to(torch.bfloat16)), key
    if alpha == 1.0:
        assert all(torch.equal(merged[k], after[k]) for k in merged)
    if alpha == 0.0:  # the start, rounded to the trained dtype
        assert all(torch.equal(merged[k], before[k].to(torch.bfloat16)) for k in merged)
    key = "model.layers.0.mlp.down_proj.weight"
    midpoint = (before[key].float() + after[key].float()) / 2
    assert alpha != 0.5 or torch.allclose(merged[key].float(), midpoint, atol=1e-2)
    assert not torch.equal(before[key].to(torch.bfloat16), after[key])  # the two models do differ


def test_files_that_travel_with_the_model_are_copied_not_interpolated(folders, tmp_path):
    start, trained = folders
    write_merged(start, trained, 0.5, tmp_path / "merged")
    for name in (SUBSPACES_FILE, "notes.txt", "config.json", "generation_config.json"):
        assert (tmp_path / "merged" / name).read_bytes() == (trained / name).read_bytes(), name
    assert torch.equal(load_file(str(tmp_path / "merged" / SUBSPACES_FILE))["model.layers.0.self_attn.q_proj"],
                       load_file(str(trained / SUBSPACES_FILE))["model.layers.0.self_attn.q_proj"])


def test_sharded_folders_keep_their_shards(tmp_path):
    start, trained = tmp_path / "start", tmp_path / "trained"
    _model(0).save_pretrained(start)  # one file
    _model(1).save_pretrained(trained, max_shard_size="20KB")  # several shards and an index
    assert len(weight_files(trained)) > 1 and (trained / INDEX_FILE).is_file()
    write_merged(start, trained, 0.25, tmp_path / "merged")
    assert weight_files(tmp_path / "merged") == weight_files(trained)
    before, after, merged = read_weights(start), read_weights(trained), read_weights(tmp_path / "merged")
    for key in merged:
        assert torch.allclose(merged[key], before[key] + 0.25 * (after[key] - before[key]), atol=1e-6)
    index = json.loads((tmp_path / "merged" / INDEX_FILE).read_text())
    assert set(index["weight_map"]) == set(merged)


def test_in_memory_weights_match_the_written_folder(folders, tmp_path):
    start, trained = folders
    model = AutoModelForCausalLM.from_pretrained(trained, dtype=torch.float32)
    Interpolation(start, trained).apply(model, 0.3)
    write_merged(start, trained, 0.3, tmp_path / "merged")
    written = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32)
    for key, value in written.state_dict().items():  # lm_head is tied to the embeddings and follows them
        assert torch.allclose(model.state_dict()[key], value, atol=1e-2), key
    tokens = torch.tensor([[1, 5, 9, 3]])
    assert torch.allclose(model(tokens).logits, written(tokens).logits, atol=5e-2)


def test_models_of_different_shapes_are_refused(tmp_path):
    _model(0).save_pretrained(tmp_path / "start")
    torch.manual_seed(1)
    LlamaForCausalLM(LlamaConfig(**{**CONFIG, "intermediate_size": 48})).save_pretrained(tmp_path / "trained")
    with pytest.raises(ValueError, match="mlp.*shape"):
        write_merged(tmp_path / "start", tmp_path / "trained", 0.5, tmp_path / "merged")
    with pytest.raises(ValueError, match="mlp.*shape"):
        Interpolation(tmp_path / "start", tmp_path / "trained")
