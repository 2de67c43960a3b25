"""Closed-loop load: N simulated people each doing one job after another, bounded in count and time."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

Job = TypeVar("Job")


@dataclass(frozen=True)
class Latency:
    """Percentiles of one kind of request, in milliseconds."""

    n: int
    p50: float
    p95: float
    p99: float


@dataclass
class Recorder:
    """Latencies per kind of request, and errors by reason."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, seconds: float) -> None:
        self.seconds[kind].append(seconds)

    def latency(self, *kinds: str) -> Latency | None:
        """Percentiles over the given kinds together (all kinds when none is named)."""
        values = [v for kind in (kinds or tuple(self.seconds)) for v in self.seconds.get(kind, [])]
        if not values:
            return None
        p50, p95, p99 = np.percentile(np.array(values) * 1000.0, [50, 95, 99])
        return Latency(len(values), float(p50), float(p95), float(p99))


@dataclass
class LoadResult:
    """What a closed-loop run did: jobs finished, failed, wall time, and the recorder."""

    concurrency: int
    done: int
    failed: int
    elapsed: float
    recorder: Recorder
    stopped_by_time: bool
    #: CPU seconds the server's workers spent per finished job (None when a worker was replaced meanwhile).
    worker_cpu_per_job: float | None = None
    #: CPU seconds per finished job of every PostgreSQL process on the machine (backends and background).
    database_cpu_per_job: float | None = None
    #: CPU seconds per finished job of the load generator itself (the simulated customers).
    client_cpu_per_job: float | None = None

    @property
    def per_second(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0


def combined(rounds: Sequence[LoadResult]) -> LoadResult:
    """Rounds of one phase as one result: jobs, failures and seconds added, latencies pooled."""
    recorder = Recorder()
    for result in rounds:
        for kind, values in result.recorder.seconds.items():
            recorder.seconds[kind].extend(values)
        recorder.errors.update(result.recorder.errors)
    done = sum(result.done for result in rounds)

    def per_job(name: str) -> float | None:
        values = [getattr(result, name) for result in rounds]
        if not done or any(value is None for value in values):
            return None
        return sum(value * result.done for value, result in zip(values, rounds, strict=True)) / done

    return LoadResult(rounds[0].concurrency, done, sum(result.failed for result in rounds),
                      sum(result.elapsed for result in rounds), recorder,
                      any(result.stopped_by_time for result in rounds), per_job("worker_cpu_per_job"),
                      per_job("database_cpu_per_job"), per_job("client_cpu_per_job"))


async def closed_loop(
    jobs: Sequence[Job],
    work: Callable[[Job, Recorder], Awaitable[None]],
    *,
    concurrency: int,
    time_limit: float,
    recorder: Recorder | None = None,
) -> LoadResult:
    """Run ``work`` over ``jobs`` with ``concurrency`` workers, each starting its next job as soon as one ends.

    Stops when the jobs run out or ``time_limit`` seconds have passed (jobs under way finish).
    A job that raises counts as failed, with the exception's type as the reason.
    """
    recorder = recorder or Recorder()
    position = 0
    done = failed = 0
    deadline = time.monotonic() + time_limit
    stopped_by_time = False

    async def worker() -> None:
        nonlocal position, done, failed, stopped_by_time
        while position < len(jobs):
            if time.monotonic() >= deadline:
                stopped_by_time = True
                return
            job = jobs[position]
            position += 1
            try:
                await work(job, recorder)
            except Exception as exc:  # noqa: BLE001 — every failure is counted and reported, never hidden
                failed += 1
                recorder.errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
            else:
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(concurrency, done, failed, time.perf_counter() - started, recorder, stopped_by_time)
