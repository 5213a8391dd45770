"""The user guide holds together: README.md stays a short guide, every relative link in it and in docs/*.md
reaches a file, and every result JSON they cite is committed, so each quoted figure has its file.

    PYTHONPATH=$PWD python -m pytest -q tests/test_docs.py

benchmarks/results/ is ignored by git (a benchmark writes there on every run); a figure quoted in the
docs cites the copy committed under docs/results/, or says that its file was not kept and how to rerun it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 250

# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# a result JSON named by its path from the repository root, in a link, in backticks or in prose
CITED_JSON = re.compile(r"(?<![\w/.-])((?:docs|benchmarks)/results/[\w./-]*?\.json)\b")


def _relative_links(page: Path) -> list[str]:
    targets = LINK.findall(page.read_text())
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def _cited_json(page: Path) -> set[str]:
    """Repository-relative paths of the result JSON a page cites; NAME.json-style placeholders left out."""
    cited = {m for m in CITED_JSON.findall(page.read_text()) if not Path(m).stem.isupper()}
    for target in _relative_links(page):  # docs/x.md links results/y.json relative to docs/
        path = target.split("#")[0]
        if path.endswith(".json") and "results/" in path:
            cited.add(str((page.parent / path).resolve().relative_to(REPO)))
    return cited


def test_readme_is_a_short_guide():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


def test_every_relative_link_reaches_a_file():
    broken = []
    for page in PAGES:
        for target in _relative_links(page):
            path = target.split("#")[0]
            if path and not (page.parent / path).exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def _tracked(paths: list[str]) -> set[str]:
    try:
        listed = subprocess.run(["git", "ls-files", "--", *paths], cwd=REPO, capture_output=True, text=True,
                                check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout: which files are committed is unknown")
    return set(listed.splitlines())


def test_every_cited_result_json_is_committed():
    cited = {path: page.relative_to(REPO) for page in PAGES for path in _cited_json(page)}
    assert cited, "no page cites a result JSON: the pattern no longer matches how the docs cite them"
    tracked = _tracked(sorted(cited))
    missing = [f"{page}: {path}" for path, page in sorted(cited.items()) if path not in tracked]
    assert not missing, ("result JSON cited but not committed (copy it, or a compact summary, under "
                         "docs/results/; or say 'file not kept; rerun: COMMAND'):\n" + "\n".join(missing))
