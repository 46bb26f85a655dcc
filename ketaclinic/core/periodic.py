"""Jobs the background worker runs on a fixed period (alert escalation, scheduled measure links).

Core knows no domain: each domain app registers its jobs from its AppConfig.ready(), and the
`worker` command runs whatever is registered. Every job must be idempotent, because a network of
clinics may run one worker per app server and each of them runs every job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every: timedelta
    run: Callable[[], int]  # returns how many things it acted on, for the worker's log


_REGISTRY: dict[str, PeriodicJob] = {}


def register(job: PeriodicJob) -> None:
    if job.every <= timedelta(0):
        raise ValueError(f"{job.name}: the period must be positive")
    _REGISTRY[job.name] = job


def registered() -> tuple[PeriodicJob, ...]:
    return tuple(sorted(_REGISTRY.values(), key=lambda job: job.name))


def due(
    jobs: Iterable[PeriodicJob], last_run: Mapping[str, datetime], now: datetime
) -> list[PeriodicJob]:
    """The jobs never run by this worker, or whose period has passed since their last run."""
    return [
        job for job in jobs if job.name not in last_run or now - last_run[job.name] >= job.every
    ]
