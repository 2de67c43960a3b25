"""What the benchmarks ran on: CPU, cores, memory, Python, PostgreSQL and SQLite versions, date."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sqlite3
from pathlib import Path

import sqlalchemy as sa


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what platform says elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total() -> str:
    """Installed memory in GiB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def postgresql_version(url: str | None) -> str:
    """The PostgreSQL server's version, or why it is not known."""
    if not url:
        return "not used"
    try:
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            version = connection.execute(sa.text("SHOW server_version")).scalar_one()
        engine.dispose()
        return str(version)
    except sa.exc.SQLAlchemyError as exc:
        return f"unreachable ({type(exc).__name__})"


def describe(postgres_url: str | None) -> dict[str, str]:
    """The machine and software versions, as label → value."""
    return {
        "Date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": cpu_model(),
        "Cores": str(os.cpu_count()),
        "Memory": memory_total(),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "PostgreSQL": postgresql_version(postgres_url),
        "SQLite": sqlite3.sqlite_version,
    }
