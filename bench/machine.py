"""What the numbers were measured on: hardware, software versions, the scratch disk, git commit."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
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
        return str(path)


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
        "scratch_dir": str(scratch),
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
