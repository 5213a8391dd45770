"""Weight-space interpolation between a stage's start and its trained model (WiSE-FT, LM-Cocktail):
merged = start + alpha * (trained - start), on the model folders as saved (plain HF folders, safetensors).

    weights = Interpolation(start_dir, trained_dir)      # fp32 copies of both, keyed as in the files
    weights.apply(model, 0.5)                            # set an in-memory model (loaded from trained_dir)
    write_merged(start_dir, trained_dir, 0.5, out_dir)   # the merged folder, file by file

The arithmetic is in fp32 and each tensor is written back in its trained dtype. Only the model's weight
files are interpolated (`model.safetensors`, or the shards a `model.safetensors.index.json` lists); every
other file of the trained folder (config, tokenizer, `olora_subspaces.safetensors`, ...) is copied as is.
Non-floating tensors are kept from the trained model. Which alpha is chosen: merge_search.py; the runner
step that ties them to a stage: cpt/runner/merge_step.py. PEFT's `add_weighted_adapter` merges adapters,
not whole models, and transformers has no model interpolation, hence these few lines.
"""

from __future__ import annotations

import json
import shutil
from contextlib import ExitStack
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"


def weight_files(folder: Path) -> list[str]:
    """The names of the model's weight files in `folder` (sharded or not)."""
    folder = Path(folder)
    if (folder / INDEX_FILE).is_file():
        weight_map = json.loads((folder / INDEX_FILE).read_text(encoding="utf-8"))["weight_map"]
        return sorted(set(weight_map.values()))
    if (folder / SINGLE_FILE).is_file():
        return [SINGLE_FILE]
    raise ValueError(f"{folder}: no {SINGLE_FILE} or {INDEX_FILE}; the merge guard needs safetensors weights")


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the model's weight files, as stored."""
    tensors = {}
    for name in weight_files(folder):
        with safe_open(str(Path(folder) / name), framework="pt") as handle:
            tensors.update({key: handle.get_tensor(key) for key in handle.keys()})  # noqa: SIM118 (not a dict)
    return tensors


def interpolate(start: torch.Tensor, trained: torch.Tensor, alpha: float, key: str = "") -> torch.Tensor:
    """start + alpha * (trained - start) in fp32, in the trained tensor's dtype."""
    if start.shape != trained.shape:
        raise ValueError(f"{key}: start has shape {tuple(start.shape)}, trained {tuple(trained.shape)}")
    if not trained.is_floating_point():
        return trained
    start32, trained32 = start.float(), trained.float()
    return (start32 + alpha * (trained32 - start32)).to(trained.dtype)


class Interpolation:
    """The start and trained weights in fp32, to set an in-memory model to any alpha again and again."""

    def __init__(self, start_dir: Path, trained_dir: Path):
        trained = read_weights(trained_dir)
        start = read_weights(start_dir)
        missing = [key for key in trained if key not in start]
        if missing:
            raise ValueError(f"{start_dir} lacks weights the trained model has: {', '.join(missing[:5])}")
        floating = [key for key, value in trained.items() if value.is_floating_point()]
        for key in floating:
            if start[key].shape != trained[key].shape:
                raise ValueError(f"{key}: start has shape {tuple(start[key].shape)}, trained {tuple(trained[key].shape)}")
        # Stored as start and delta: one fp32 copy each, the trained weights being start + 1 * delta.
        self.start = {key: start.pop(key).float() for key in floating}
        self.delta = {key: trained.pop(key).float() - self.start[key] for key in floating}

    @torch.no_grad()
    def apply(self, model, alpha: float) -> None:
        """Set `model`'s parameters and buffers to start + alpha * delta (tied weights follow their source)."""
        state = model.state_dict()
        for key, start in self.start.items():
            if key in state:
                state[key].copy_(start + alpha * self.delta[key])


def write_merged(start_dir: Path, trained_dir: Path, alpha: float, out_dir: Path) -> None:
    """Write the folder of start + alpha * (trained - start) into `out_dir` (an empty or new folder)."""
    start_dir, trained_dir, out_dir = Path(start_dir), Path(trained_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = weight_files(trained_dir)
    for entry in trained_dir.iterdir():
        if entry.name in names:
            continue
        if entry.is_dir():
            shutil.copytree(entry, out_dir / entry.name)
        else:
            shutil.copy2(entry, out_dir / entry.name)
    with ExitStack() as stack:
        starts = [stack.enter_context(safe_open(str(start_dir / n), framework="pt")) for n in weight_files(start_dir)]
        start_of = {key: handle for handle in starts for key in handle.keys()}  # noqa: SIM118
        for name in names:  # one shard in memory at a time
            with safe_open(str(trained_dir / name), framework="pt") as handle:
                merged = {}
                for key in handle.keys():  # noqa: SIM118 (a safetensors handle is not iterable)
                    if key not in start_of:
                        raise ValueError(f"{start_dir} lacks the weight {key} that {trained_dir / name} has")
                    merged[key] = interpolate(start_of[key].get_tensor(key), handle.get_tensor(key), alpha, key)
                save_file(merged, str(out_dir / name), metadata=handle.metadata())
