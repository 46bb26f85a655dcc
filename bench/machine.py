"""What the numbers were measured on: hardware, software versions, the scratch disk, git commit."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def in_repository(path: str | Path) -> str:
    """A path as results record it: relative to the checkout when inside it, so a result file
    names no one's machine."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        # Only the last part: the rest is someone's machine, and the suite refuses such paths.
        return f"(outside the checkout)/{Path(path).name}"


def _first(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _filesystem(path: Path) -> str:
    """The type of the mount holding `path` (tmpfs would make fsync free and the numbers moot)."""
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, fstype, *_ = line.split()
            if str(path.resolve()).startswith(mount) and len(mount) > len(best):
                best, kind = mount, fstype
    except OSError:
        pass
    return kind


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def describe(scratch: Path) -> dict[str, Any]:
    memory_kb = _first("/proc/meminfo", "MemTotal").split()
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor(),
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "memory_gib": round(int(memory_kb[0]) / 1024 / 1024, 1) if memory_kb else None,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "django": _version("django"),
        "gunicorn": _version("gunicorn"),
        "scratch_dir": in_repository(scratch),
        "scratch_filesystem": _filesystem(scratch),
    }


def git_commit() -> dict[str, Any]:
    """HEAD and whether the working tree differs from it (read-only git commands)."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(  # noqa: S603
                ["git", *args],  # noqa: S607
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": git("rev-parse", "HEAD") or None,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD") or None,
        "dirty": bool(changed),
        "changed_files": len(changed.splitlines()) if changed else 0,
    }


def worker_result(command: list[str], *, bench: str) -> dict[str, Any]:
    """Run one measuring child (`python -m bench.X --worker ...`) and return the dictionary it
    prints on its `RESULT ` line; its other output is progress for the terminal."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{bench}: a worker run failed ({done.returncode})")
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    print(line, file=sys.stderr, flush=True)
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    return result


def save_results(prefix: str, results: list[dict[str, Any]]) -> Path:
    """Write a run's results beside the commit and the machine they were measured on."""
    folder = ROOT / "bench" / "results"
    folder.mkdir(exist_ok=True)
    path = folder / f"{prefix}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    document = {
        "commit": git_commit(),
        "machine": describe(Path(tempfile.gettempdir())),
        "results": results,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
