"""Fixtures of the fault tests, and the figures they print at the end of the run (faults injected, acknowledged vs stored)."""

from __future__ import annotations

from typing import Any

from .figures import FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the faults injected and what the database kept."""
    if not FIGURES:
        return
    terminalreporter.section("faults: injected, acknowledged, stored")
    for name, count in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{count:>8,}  {name}")
