"""Files that travel with the model: a guard's memory of earlier stages, kept in every later model folder.

A guard that remembers the run so far writes a file beside the stage's model (O-LoRA's earlier A
matrices, OSF's record of its stages and of their updates). Any later stage, of any kind and with any
guard or none, must hand that memory on, or a guarded stage after it forgets that earlier stages
existed. So after a stage saves its model, `carry_forward` copies each of these files from the stage's
input model unless the stage wrote its own (stages/training.py::_save_final):

    carry_forward(ctx.input_model, folder)   # -> the names it copied

A guard reads its file from the stage's input model and writes the updated one into the new folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

OLORA_SUBSPACES = "olora_subspaces.safetensors"  # O-LoRA: every earlier stage's A, stacked along the rank
OSF_RECORD = "osf_stages.json"  # OSF: one entry per earlier OSF stage (its preserved share), so stage k knows k
OSF_UPDATES = "osf_updates.safetensors"  # OSF preserve_updates: earlier stages' update directions per matrix

TRAVELLING_FILES = (OLORA_SUBSPACES, OSF_RECORD, OSF_UPDATES)


def carry_forward(source: Path, folder: Path) -> list[str]:
    """Copy each travelling file from `source` into `folder` where `folder` has none; return what was copied."""
    copied = []
    for name in TRAVELLING_FILES:
        origin, target = Path(source) / name, Path(folder) / name
        if origin.is_file() and not target.exists():
            shutil.copyfile(origin, target)
            copied.append(name)
    return copied


def read_osf_record(folder: Path | str | None) -> list[dict]:
    """The OSF stages the model in `folder` went through, oldest first (empty when none, or no folder)."""
    path = Path(folder) / OSF_RECORD if folder else None
    return json.loads(path.read_text(encoding="utf-8"))["stages"] if path and path.is_file() else []
