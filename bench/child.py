"""One measured task in a process of its own, so its peak memory is its own: `python -m bench.child TASK ...`.

Prints one JSON line: the task's seconds, the resident memory before it started (the app
and its libraries loaded), the process's peak resident memory when it ended (VmHWM, the
kernel's high-water mark, the figure getrusage reports as ru_maxrss) and what it returned.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .servers import ROOT, status_kib


@dataclass(frozen=True)
class ChildResult:
    """A child's answer and its peak resident memory."""

    seconds: float
    cpu_seconds: float
    baseline_mib: float
    peak_mib: float
    details: dict[str, Any]


class ChildError(RuntimeError):
    """A measured task failed; the message has the end of its output."""


def run_child(task: str, *args: str, timeout: float = 1800.0, profile: Path | None = None) -> ChildResult:
    """Run ``python -m bench.child TASK ARGS`` and return its result with its peak memory (VmHWM at exit)."""
    command = [sys.executable, "-m", "bench.child", task, *args]
    if profile is not None:
        command += ["--profile", str(profile)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise ChildError(f"{task} did not finish within {timeout:.0f} s") from None
    if process.returncode != 0:
        raise ChildError(f"{task} failed (exit {process.returncode}):\n{err[-3000:]}")
    answer = json.loads(out.strip().splitlines()[-1])
    return ChildResult(answer["seconds"], answer["cpu_seconds"], answer["baseline_mib"], answer["peak_mib"],
                       answer["details"])


def _memory_mib(name: str) -> float:
    value = status_kib(os.getpid(), name)
    return (value or 0) / 1024


def _campaign(url: str) -> Any:
    """Push an app context on ``url`` and return the benchmark's campaign (libraries loaded, connection open)."""
    from .datasets import CAMPAIGN, make_app

    app = make_app(url)
    app.app_context().push()
    import survey.services.imports  # noqa: F401 — loaded before measuring, like in a running server
    import survey.services.reports  # noqa: F401
    from survey.extensions import db
    from survey.models import Campaign

    return db.session.scalar(sa.select(Campaign).where(Campaign.code == CAMPAIGN))


def task_import(campaign: Any, csv_path: str) -> dict[str, Any]:
    from survey.services.imports import import_consultant

    result = import_consultant(campaign, Path(csv_path), actor="bench")
    return {"rows": result.rows, "complete": result.complete}


def task_report(campaign: Any) -> dict[str, Any]:
    from survey.services.reports import build_report

    report = build_report(campaign)
    rows = report.unit_rows("en")
    return {
        "units": len(rows),
        "consultant_n": sum(r["consultant_n"] or 0 for r in rows),
        "cross_n": sum(r["cross_n"] or 0 for r in rows),
        "scores": {r["unit_code"]: r["consultant_score"] for r in rows},
    }


def task_pandas(campaign: Any) -> dict[str, Any]:
    from survey.extensions import db

    from .analyst import analyst_report

    frame = analyst_report(db.engine, campaign.id)
    return {
        "units": len(frame),
        "consultant_n": int(frame["consultant_n"].sum()),
        "cross_n": int(frame["cross_n"].sum()),
        "scores": dict(zip(frame["unit_code"], frame["consultant_score"].astype(float), strict=True)),
    }


def _use_pragmas(pragmas: list[str]) -> None:
    """Apply PRAGMAs to every new SQLite connection of this process (an experiment; nothing is changed on disk)."""
    import sqlite3

    # Only NAME=VALUE made of letters, digits, '_' and '-': the text goes into SQL.
    checked = [p for p in pragmas if p.replace("_", "").replace("=", "").replace("-", "").isalnum()]

    @sa.event.listens_for(sa.engine.Engine, "connect")
    def run_pragmas(connection: Any, record: Any) -> None:
        if isinstance(connection, sqlite3.Connection):
            for pragma in checked:
                connection.execute(f"PRAGMA {pragma}")


TASKS = {"import": task_import, "report": task_report, "pandas": task_pandas}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("url")
    parser.add_argument("extra", nargs="*")
    parser.add_argument("--profile", help="write a pyinstrument profile of the task to this text file")
    parser.add_argument("--sqlite-pragma", action="append", default=[], metavar="NAME=VALUE",
                        help="run this PRAGMA on every SQLite connection first (to measure a proposed setting)")
    options = parser.parse_args()
    task = TASKS[options.task]
    if options.sqlite_pragma:
        _use_pragmas(options.sqlite_pragma)
    # Set up (app, libraries, connection) before measuring: the numbers are the task's own.
    campaign = _campaign(options.url)
    baseline = _memory_mib("VmRSS")
    profiler = None
    if options.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    cpu_started = time.process_time()
    started = time.perf_counter()
    details = task(campaign, *options.extra)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    if profiler is not None:
        profiler.stop()
        Path(options.profile).write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "baseline_mib": baseline,
                      "peak_mib": _memory_mib("VmHWM"), "details": details}))


if __name__ == "__main__":
    main()
