"""Run a command and measure its process tree: peak resident memory (anonymous and file-backed apart), the
kernel's own peak for the child, and the time until a line of its output first matches a pattern.

    from tree_memory import measure
    run = measure(["python", "-m", "cpt", "run", "r.yaml"], env, log=Path("run.log"), first=r"['\\"]loss['\\"]")
    run["peak_rss_gb"], run["peak_anon_gb"], run["seconds_to_first"], run["seconds"]

Resident memory is read from /proc/PID/status of the command and all its descendants every `interval`
seconds and summed: RssAnon is memory the processes own (Python objects, Arrow tables read into memory),
RssFile the pages of memory-mapped files they touched (the Arrow caches), which the kernel can drop and
reread at any time. `ru_maxrss` (os.wait4) is the kernel's peak RSS of the largest single process.
`min_available_gb`: if the machine's available memory falls below it, the command is stopped (a
machine shared with other jobs must not swap or kill them) and the run is marked `stopped`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil

GB = 1e9


def measure(command: list[str], env: dict, log: Path, first: str | None = None, cwd: Path | None = None,
            interval: float = 0.1, min_available_gb: float = 2.5) -> dict:
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    peaks = {"rss": 0, "anon": 0, "file": 0, "stopped": None}
    done = threading.Event()
    sampler = threading.Thread(target=_sample, args=(process.pid, peaks, done, interval, min_available_gb))
    sampler.start()
    first_at = None
    pattern = re.compile(first) if first else None
    with log.open("w") as out:
        for line in process.stdout:
            out.write(line)
            if first_at is None and pattern is not None and pattern.search(line):
                first_at = time.perf_counter() - started
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return {"command": " ".join(command), "returncode": process.returncode, "seconds": round(seconds, 1),
            "seconds_to_first": round(first_at, 1) if first_at is not None else None,
            "peak_rss_gb": round(peaks["rss"] / GB, 3), "peak_anon_gb": round(peaks["anon"] / GB, 3),
            "peak_file_gb": round(peaks["file"] / GB, 3), "ru_maxrss_gb": round(usage.ru_maxrss * 1024 / GB, 3),
            "stopped": peaks["stopped"], "log": str(log)}


def _sample(pid: int, peaks: dict, done: threading.Event, interval: float, min_available_gb: float) -> None:
    root = psutil.Process(pid)
    while not done.is_set():
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        anon = file = shmem = 0
        for process in tree:
            fields = _status(process.pid)
            anon, file, shmem = anon + fields.get("RssAnon", 0), file + fields.get("RssFile", 0), shmem + fields.get(
                "RssShmem", 0)
        peaks["rss"] = max(peaks["rss"], anon + file + shmem)
        peaks["anon"], peaks["file"] = max(peaks["anon"], anon), max(peaks["file"], file)
        available = psutil.virtual_memory().available
        if available < min_available_gb * GB and peaks["stopped"] is None:
            peaks["stopped"] = f"machine memory nearly exhausted ({available / GB:.1f} GB available) at " \
                               f"{(anon + file + shmem) / GB:.1f} GB resident"
            os.killpg(pid, signal.SIGKILL)
        done.wait(interval)


def _status(pid: int) -> dict[str, int]:
    """RssAnon/RssFile/RssShmem of one process, in bytes ({} once it has exited)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {key: int(value.split()[0]) * 1024 for key, value in
            (line.split(":", 1) for line in text.splitlines() if line.startswith("Rss"))}
