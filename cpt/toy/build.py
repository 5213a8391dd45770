"""Build the embedded toy (model, tokenizer, tasks, domains, lm-eval YAMLs) into one directory.

`ensure_toy()` is what callers use: it builds once into `toy_root()` (CPT_TOY_DIR or
~/.cache/cpt/toy-v3), under a file lock, into a temporary directory renamed into place, and the
BUILD_INFO.json marker is written last, so a half-built directory is never taken as complete.
Run `python -m cpt.toy [DIR]` to build (or reuse) the toy and print a summary.
"""

import json
import os
from pathlib import Path

from cpt.errors import UserError
from cpt.toy.corpus import TOY_DOMAINS, domain_texts
from cpt.toy.tasks import TOY_TASKS, task_splits
from eval.cached_folder import build_once
from eval.task_files import write_prompt_answer_task

VERSION = 3  # 2: lm-eval tasks read Parquet (JSON turned date answers into timestamps); 3: smaller, for any CPU
MARKER = "BUILD_INFO.json"
BUILT_ENTRIES = {"model", "tasks", "domains", MARKER}


def toy_root() -> Path:
    """Where the toy lives: $CPT_TOY_DIR if set, else ~/.cache/cpt/toy-v3."""
    configured = os.environ.get("CPT_TOY_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "cpt" / f"toy-v{VERSION}"


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_domains(target: Path, seed: int) -> list[str]:
    training_texts: list[str] = []
    for domain in TOY_DOMAINS:
        for split in ("train", "validation"):
            texts = domain_texts(domain, split, seed)
            _write_jsonl(target / "domains" / domain / f"{split}.jsonl", [{"text": text} for text in texts])
            if split == "train":
                training_texts += texts
    return training_texts


def _write_tasks(target: Path, final_root: Path, seed: int) -> list[str]:
    training_texts: list[str] = []
    for task in TOY_TASKS:
        train, test = task_splits(task, seed)
        task_dir = target / "tasks" / task
        _write_jsonl(task_dir / "train.jsonl", train)
        _write_jsonl(task_dir / "test.jsonl", test)
        write_prompt_answer_task(task, test, task_dir, data_dir=final_root / "tasks" / task)
        training_texts += [record["prompt"] + record["completion"] for record in train]
    return training_texts


def _build(target: Path, final_root: Path, seed: int) -> Path:
    # Imported here: torch and transformers are slow to import, and a complete toy never needs them.
    from cpt.toy.model import save_model
    from cpt.toy.tokenizer import save_tokenizer

    target.mkdir(parents=True, exist_ok=True)
    (target / MARKER).unlink(missing_ok=True)
    texts = _write_domains(target, seed) + _write_tasks(target, final_root, seed)
    tokenizer = save_tokenizer(texts, target / "model")
    params = save_model(tokenizer, target / "model", seed)
    info = {
        "version": VERSION,
        "seed": seed,
        "tasks": list(TOY_TASKS),
        "domains": list(TOY_DOMAINS),
        "model_params": params,
    }
    (target / MARKER).write_text(json.dumps(info, indent=2) + "\n")
    return final_root


def build_toy(root: Path, seed: int = 0) -> Path:
    """Build the toy into `root` in place (deterministic from `seed`) and return `root`.

    Prefer `ensure_toy`, which is safe when several processes ask for the same toy at once.
    """
    root = Path(root).absolute()
    return _build(root, root, seed)


def _read_marker(root: Path) -> dict | None:
    try:
        info = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _is_complete(root: Path, seed: int) -> bool:
    info = _read_marker(root)
    if info is None or info.get("version") != VERSION:
        return False
    if info.get("seed") != seed:
        raise UserError(
            f"{root} holds the toy built with seed {info.get('seed')}, not {seed}: "
            f"set CPT_TOY_DIR to another directory, or delete {root} to rebuild it"
        )
    return True


def _check_replaceable(root: Path) -> None:
    # Only an earlier, unfinished toy build is replaced; anything else there is the user's.
    if root.exists() and (not root.is_dir() or not {p.name for p in root.iterdir()} <= BUILT_ENTRIES):
        raise UserError(f"{root} exists and is not a toy build: remove it or set CPT_TOY_DIR elsewhere")


def ensure_toy(root: Path | None = None, seed: int = 0) -> Path:
    """Return the toy directory (default `toy_root()`), building it first unless a complete build is there."""
    root = Path(root).absolute() if root is not None else toy_root().absolute()
    return build_once(root, lambda folder: _is_complete(folder, seed), lambda staging: _build(staging, root, seed),
                      _check_replaceable)
