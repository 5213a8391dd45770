"""The run's manifest: which stages finished, from which config, on which input.

`RUN_DIR/manifest.json` is the single source of truth for skip-if-done and resume. Only the
main process writes it, always atomically.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cpt.core.layout import RunLayout
from cpt.core.recipe_base import FOLDER_NAME
from cpt.errors import UserError
from eval.files import atomic_write_json, read_json

MANIFEST_VERSION = 1

PENDING, RUNNING, DONE = "pending", "running", "done"


def config_hash(payload: Any, parent_hash: str = "") -> str:
    """Hash of a JSON-able payload chained to its parent's hash: a change upstream changes it."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":")) + parent_hash
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class StageRecord:
    name: str
    kind: str
    index: int
    status: str = PENDING
    config_hash: str = ""
    input: str = ""  # checkpoint the stage starts from (lineage)
    reference: str = ""  # default KL / DPO reference: the input
    output: str = ""  # relative to the run dir
    global_step: int = 0
    precision: str = ""  # "fp32: this CPU has no native bf16 (AVX2)" (core/precision.py)
    metrics: dict[str, Any] = field(default_factory=dict)
    merge: dict[str, Any] = field(default_factory=dict)  # the merge guard's alpha and scores (runner/merge_step.py)
    started_at: float | None = None
    finished_at: float | None = None


def _inside_run_dir(rec: StageRecord) -> StageRecord:
    """A record whose name and output stay inside the run directory; a hand-edited or foreign
    manifest must not point `cpt eval` or a resume at folders elsewhere."""
    if not FOLDER_NAME.fullmatch(str(rec.name)):
        raise ValueError(f"stage name '{rec.name}' cannot name a folder inside the run directory")
    output = PurePosixPath(rec.output)
    if output.is_absolute() or ".." in output.parts:
        raise ValueError(f"stage {rec.name}: output '{rec.output}' is outside the run directory")
    return rec


@dataclass
class Manifest:
    run_name: str
    base_model: str = ""
    base_hash: str = ""
    stages: dict[str, StageRecord] = field(default_factory=dict)
    version: int = MANIFEST_VERSION

    @classmethod
    def load(cls, run_dir: Path) -> Manifest | None:
        path = RunLayout(run_dir).manifest
        if not path.is_file():
            return None
        try:
            return cls._from_json(read_json(path))
        except (ValueError, TypeError, KeyError) as exc:
            raise UserError(f"{path}: unreadable manifest ({exc}); move it away to start the run afresh") from None

    @classmethod
    def _from_json(cls, raw: Any) -> Manifest:
        if not isinstance(raw, dict) or not isinstance(raw.get("stages"), dict):
            raise TypeError("expected a JSON object with a 'stages' object")
        stages = {}
        for name, rec in raw.pop("stages").items():
            if not isinstance(rec, dict):
                raise TypeError(f"stage {name}: expected a JSON object")
            stages[name] = _inside_run_dir(StageRecord(**rec))
        return cls(stages=stages, **raw)

    def save(self, run_dir: Path) -> None:
        atomic_write_json(RunLayout(run_dir).manifest, asdict(self))

    def record(self, name: str, kind: str, index: int) -> StageRecord:
        """The stage's record, created as pending if new (or if its kind changed)."""
        rec = self.stages.get(name)
        if rec is None or rec.kind != kind:
            rec = self.stages[name] = StageRecord(name=name, kind=kind, index=index)
        rec.index = index
        return rec

    def mark_running(self, rec: StageRecord, config: str, input_path: str, reference: str, precision: str = "") -> None:
        rec.status, rec.config_hash, rec.input, rec.reference = RUNNING, config, input_path, reference
        rec.precision = precision
        rec.started_at, rec.finished_at, rec.output = time.time(), None, ""

    def mark_done(self, rec: StageRecord, output: str, global_step: int, metrics: dict, merge: dict | None = None) -> None:
        rec.status, rec.output, rec.global_step = DONE, output, global_step
        rec.metrics, rec.finished_at, rec.merge = metrics, time.time(), merge or {}
