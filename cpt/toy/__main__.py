"""Build (or reuse) the toy and print what it holds.

    python -m cpt.toy [DIR]        # DIR defaults to $CPT_TOY_DIR or ~/.cache/cpt/toy-v3
"""

import json
import sys
from pathlib import Path

from cpt.toy import TOY_DOMAINS, TOY_TASKS, ensure_toy


def _first_line(path: Path) -> str:
    with path.open(encoding="utf-8") as handle:
        return handle.readline().strip()


def main(argv: list[str]) -> None:
    """Ensure the toy exists, then print its build info, a test record per task and a document per domain."""
    root = ensure_toy(Path(argv[0]) if argv else None)
    print(f"toy at {root}")
    print((root / "BUILD_INFO.json").read_text().strip())
    for task in TOY_TASKS:
        print(f"{task}: {_first_line(root / 'tasks' / task / 'test.jsonl')}")
    for domain in TOY_DOMAINS:
        text = json.loads(_first_line(root / "domains" / domain / "train.jsonl"))["text"]
        print(f"[{domain}] {text[:160]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
