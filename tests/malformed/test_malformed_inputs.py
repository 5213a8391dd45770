"""The malformed-input corpus (cases.yaml): broken recipes, overrides, data files, rewards, run folders.

Every case runs `cpt.cli.main` in-process in a fresh working folder that already holds a run
(runs/t). Each must end with exactly one `cpt: error:` line naming the place (file:line, key path,
override or module), exit 2, print no traceback, stay short (a 5 MB data line is never echoed), and
leave every file and folder there as it was: nothing written, nothing created, the old run untouched.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
import yaml

from cpt.cli import main
from cpt.errors import USER_ERROR_EXIT

CASES_FILE = Path(__file__).with_name("cases.yaml")
CORPUS = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
CASES, ACCEPTED = CORPUS["cases"], CORPUS["accepted"]
MAX_MESSAGE = 600

# Good rows of every shape, present in every case's folder.
GOOD_FILES = {
    "data/sft.jsonl": [{"prompt": "2+2=", "completion": "4"}, {"prompt": "3+3=", "completion": "6"}],
    "data/prefs.jsonl": [{"prompt": "2+2=", "chosen": "4", "rejected": "5"}],
    "data/prompts.jsonl": [{"prompt": "2+2=", "answer": "4"}, {"prompt": "3+3=", "answer": "6"}],
    "data/text.jsonl": [{"text": "Paris is the capital of France."}, {"text": "Rome is the capital of Italy."}],
}
RUN_DIR = Path("runs/t")
EXISTING_RECIPE = {
    "run": {"name": "t", "output_dir": "runs"},
    "stages": [{"name": "a", "kind": "sft", "data": {"path": "data/sft.jsonl"}},
               {"name": "b", "kind": "sft", "data": {"path": "data/sft.jsonl"}}],
    "eval": {"tasks": [{"name": "mine", "path": "data/prompts.jsonl"}]},
}
EXISTING_MANIFEST = {
    "run_name": "t", "base_model": "", "base_hash": "0" * 16, "version": 1,
    "stages": {"a": {"name": "a", "kind": "sft", "index": 0, "status": "done", "config_hash": "1" * 16,
                     "output": "stages/a/model", "global_step": 3}},
}


def _existing_run(overrides: dict[str, str]) -> None:
    """The run a failing command must leave byte-identical; `overrides` replace some of its files."""
    files = {
        "manifest.json": json.dumps(EXISTING_MANIFEST, indent=2),
        "recipe.json": json.dumps(EXISTING_RECIPE, indent=2),
        "recipe.yaml": yaml.safe_dump(EXISTING_RECIPE, sort_keys=False),
        "stages/a/model/COMPLETE": "ok\n",
        "stages/a/model/model.safetensors": "\x00\x01weights\x02" * 64,
        **overrides,
    }
    for name, text in files.items():
        _write(RUN_DIR / name, text.encode("utf-8"))


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _generated(spec: dict) -> bytes | None:
    """Bytes for content YAML cannot hold literally; None for a directory (made by the caller)."""
    kind = spec["generate"]
    if kind == "directory":
        return None
    if kind == "encoded":
        return spec["text"].encode(spec["encoding"])
    if kind == "big_line":  # [a good line,] then one of `megabytes` MB: broken JSON, or a huge field name
        filler = "x" * (spec["megabytes"] * 1_000_000)
        first = json.dumps(GOOD_FILES["data/sft.jsonl"][0]) + "\n" if spec.get("after_good_line", True) else ""
        big = f'{{"{filler}": 1' if spec.get("key") else f'{{"prompt": "{filler}", "completion": "4"'
        return (first + big + ("" if spec.get("broken") else "}") + "\n").encode()
    if kind == "nested":  # brackets nested `depth` deep, after `prefix`
        return (spec.get("prefix", "") + "[" * spec["depth"] + "]" * spec["depth"] + "\n").encode()
    if kind == "parquet":  # a Parquet file holding `rows`
        import pyarrow as pa
        import pyarrow.parquet as pq

        buffer = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(spec["rows"]), buffer)
        return buffer.getvalue().to_pybytes()
    raise ValueError(f"unknown generator {kind!r}")


def _make_files(files: dict) -> None:
    for name, content in files.items():
        data = _generated(content) if isinstance(content, dict) else content.encode("utf-8")
        if data is None:
            Path(name).mkdir(parents=True, exist_ok=True)
        else:
            _write(Path(name), data)


def _write_recipe(case: dict) -> None:
    if "recipe_file" in case:
        _write(Path("recipe.yaml"), _generated(case["recipe_file"]))
    elif "recipe_text" in case:
        _write(Path("recipe.yaml"), case["recipe_text"].encode(case.get("recipe_encoding", "utf-8")))
    elif "recipe" in case:
        _write(Path("recipe.yaml"), yaml.safe_dump(case["recipe"], sort_keys=False).encode("utf-8"))


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` -> its bytes (None for a folder)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.fixture
def isolated(tmp_path, monkeypatch, cli_state_restored):
    """A working folder of its own, with the signal handlers and module state `cpt run` changes restored after."""
    import datasets
    import transformers

    # `cpt run` and `cpt eval` turn the libraries' progress bars off for the whole process
    bars = datasets.is_progress_bar_enabled(), transformers.utils.logging.is_progress_bar_enabled()
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # reward modules of the case import from here
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no __pycache__ appearing in the folder
    yield tmp_path
    if bars[0]:
        datasets.enable_progress_bars()
    if bars[1]:
        transformers.utils.logging.enable_progress_bar()
    for name in [n for n, m in sys.modules.items() if str(getattr(m, "__file__", "")).startswith(str(tmp_path))]:
        del sys.modules[name]


def _prepare(case: dict, folder: Path, request, monkeypatch) -> dict[str, bytes | None]:
    """Fill `folder` for `case`; return its snapshot."""
    if case.get("toy"):
        request.getfixturevalue("toy_dir")
    else:  # a case that reaches the toy suite unexpectedly builds it here, and the snapshot shows it
        monkeypatch.setenv("CPT_TOY_DIR", str(folder / "unexpected-toy"))
    for name, rows in GOOD_FILES.items():
        _write(Path(name), "".join(json.dumps(row) + "\n" for row in rows).encode())
    _existing_run(case.get("existing", {}))
    _make_files(case.get("files", {}))
    _write_recipe(case)
    importlib.invalidate_caches()  # the case's reward modules were written after sys.path was set
    return _snapshot(folder)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_malformed_input_fails_cleanly(case, isolated, request, monkeypatch, capsys):
    before = _prepare(case, isolated, request, monkeypatch)

    code = main([str(arg) for arg in case.get("args", ["run", "recipe.yaml"])])

    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("cpt: error:")]
    assert len(errors) == 1, err[-2000:]
    message = err[err.index("cpt: error:"):].rstrip("\n")
    assert code == USER_ERROR_EXIT, message
    assert len(message) < MAX_MESSAGE, message[:MAX_MESSAGE]
    for expected in case["expect"]:
        assert expected in message, message
    for unwanted in case.get("absent", []):
        assert unwanted not in message, message
    after = _snapshot(isolated)
    assert sorted(after) == sorted(before), f"paths appeared or vanished: {sorted(set(after) ^ set(before))}"
    assert after == before, f"files changed: {[p for p in before if before[p] != after[p]]}"


@pytest.mark.parametrize("case", ACCEPTED, ids=[c["name"] for c in ACCEPTED])
def test_odd_but_valid_input_is_accepted(case, isolated, request, monkeypatch, capsys):
    """A byte-order mark, CRLF line ends, merge keys, chat rows, numeric answers: `cpt plan` takes them."""
    before = _prepare(case, isolated, request, monkeypatch)

    code = main(["plan", "recipe.yaml"])

    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert "[1] a" in out or "[1] g" in out
    assert _snapshot(isolated) == before


def test_corpus_is_large_and_names_are_unique():
    names = [case["name"] for case in CASES + ACCEPTED]
    assert len(CASES) >= 30 and len(set(names)) == len(names)
    assert all(case.get("expect") for case in CASES)
