"""HTTP load clients: closed-loop (N clients, each sending its next request when the last one is
answered) and fixed-rate (requests scheduled at a constant rate whatever the answers do).

Clients are threads, one http.client connection each (reopened when gunicorn's sync workers
close it after a response). Fixed-rate latency is measured from the moment a request was
*scheduled*, not sent, so a stalled server shows up in the tail instead of silently slowing the
client down (the "coordinated omission" of closed-loop tools).
"""

from __future__ import annotations

import http.client
import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tqdm import tqdm

# A request: method, path, body (bytes or None), headers. Built per call from the client's index
# (which picks that client's session) and its own random generator.
Request = tuple[str, str, bytes | None, dict[str, str]]
MakeRequest = Callable[[int, random.Random], Request]
CpuProbe = Callable[[], float]  # cumulative CPU seconds of the server's processes


@dataclass
class Result:
    name: str
    clients: int
    seconds: float
    requests: int
    errors: int
    throughput: float  # completed requests per second in the measured window
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    target_rate: float | None = None
    client_cpu: float = 0.0  # CPU the load threads used, in cores (they share the machine)
    # CPU the server's processes used in the measured window: per request, and in cores. Far less
    # sensitive than latency to other work on a shared machine.
    server_cpu_ms_per_request: float | None = None
    server_cpu_cores: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    first_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


class _Client:
    def __init__(self, host: str, port: int) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=60)

    def send(self, request: Request) -> int:
        method, path, body, headers = request
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            response.read()
            return response.status
        except Exception:
            self.conn.close()
            raise


class _Tally:
    """Samples from every client thread (list.append is atomic under the GIL)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.errors = 0
        self.first_error = ""
        self.done = 0
        self.lock = threading.Lock()

    def add(self, latency: float, status: int | str, ok: bool) -> None:
        self.latencies.append(latency)
        with self.lock:
            self.done += 1
            self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
            if not ok:
                self.errors += 1
                if not self.first_error:
                    self.first_error = str(status)


def _one(client: _Client, request: Request, expected: int) -> tuple[int | str, bool]:
    try:
        status = client.send(request)
    except Exception as exc:  # counted, not raised: a load test reports errors
        return f"{type(exc).__name__}: {exc}"[:200], False
    return status, status == expected


def _tick(bar: Any, tally: _Tally, begin: float, until: float) -> None:
    """Update the bar once a half second until `until` (perf_counter time)."""
    while (now := time.perf_counter()) < until:
        time.sleep(min(0.5, until - now))
        bar.update(min(round(time.perf_counter() - begin), bar.total) - bar.n)
        bar.set_postfix(requests=tally.done, errors=tally.errors, refresh=False)


def _bar(label: str, seconds: float) -> Any:
    return tqdm(total=round(seconds), desc=label, unit="s", leave=False, disable=None)


def closed_loop(
    *,
    name: str,
    host: str,
    port: int,
    make: MakeRequest,
    expected: int,
    clients: int,
    seconds: float,
    warmup: float,
    seed: int = 1,
    probe: CpuProbe | None = None,
) -> Result:
    tally = _Tally()
    barrier = threading.Barrier(clients + 1)
    window: dict[str, float] = {}

    def work(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        client = _Client(host, port)
        barrier.wait()
        start, end = window["start"], window["end"]
        while (t0 := time.perf_counter()) < end:
            status, ok = _one(client, make(index, rng), expected)
            if t0 >= start:
                tally.add(time.perf_counter() - t0, status, ok)
        client.conn.close()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    begin = time.perf_counter()
    window["start"] = begin + warmup
    window["end"] = begin + warmup + seconds
    cpu = time.process_time()
    barrier.wait()
    with _bar(name, warmup + seconds) as bar:
        _tick(bar, tally, begin, window["start"])
        server = probe() if probe else 0.0
        _tick(bar, tally, begin, window["end"])
        server = probe() - server if probe else 0.0
    for thread in threads:
        thread.join()
    cpu = (time.process_time() - cpu) / (time.perf_counter() - begin)
    return _result(name, clients, seconds, tally, cpu, server if probe else None)


def fixed_rate(
    *,
    name: str,
    host: str,
    port: int,
    make: MakeRequest,
    expected: int,
    rate: float,
    seconds: float,
    workers: int = 64,
    seed: int = 2,
    probe: CpuProbe | None = None,
) -> Result:
    tally = _Tally()
    total = int(rate * seconds)
    counter = itertools.count()
    lock = threading.Lock()
    begin = time.perf_counter() + 0.2

    def work(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        client = _Client(host, port)
        while True:
            with lock:
                number = next(counter)
            if number >= total:
                break
            scheduled = begin + number / rate
            time.sleep(max(0.0, scheduled - time.perf_counter()))
            status, ok = _one(client, make(index, rng), expected)
            tally.add(time.perf_counter() - scheduled, status, ok)
        client.conn.close()

    cpu = time.process_time()
    server = probe() if probe else 0.0
    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    with _bar(name, seconds) as bar:
        _tick(bar, tally, begin, begin + seconds)
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begin
    server = probe() - server if probe else 0.0
    cpu = (time.process_time() - cpu) / elapsed
    result = _result(name, workers, elapsed, tally, cpu, server if probe else None)
    result.target_rate = rate
    return result


def _result(
    name: str, clients: int, seconds: float, tally: _Tally, cpu: float, server: float | None
) -> Result:
    ordered = sorted(tally.latencies)
    return Result(
        name=name,
        clients=clients,
        seconds=round(seconds, 2),
        requests=len(ordered),
        errors=tally.errors,
        throughput=round(len(ordered) / seconds, 1) if seconds else 0.0,
        p50_ms=round(percentile(ordered, 0.50) * 1000, 2),
        p95_ms=round(percentile(ordered, 0.95) * 1000, 2),
        p99_ms=round(percentile(ordered, 0.99) * 1000, 2),
        max_ms=round((ordered[-1] if ordered else 0.0) * 1000, 2),
        client_cpu=round(cpu, 2),
        server_cpu_ms_per_request=(
            round(server * 1000 / len(ordered), 2) if server is not None and ordered else None
        ),
        server_cpu_cores=round(server / seconds, 2) if server is not None and seconds else None,
        statuses=dict(sorted(tally.statuses.items())),
        first_error=tally.first_error,
    )
