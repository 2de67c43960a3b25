"""The one results table, printed and written to bench/RESULTS.md with the machine it ran on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Everything below this line in RESULTS.md is written by hand (profiles, before/after) and kept by each run.
NOTES_MARKER = "<!-- Notes below this line are kept when `make bench` rewrites the file. -->"
COLUMNS = ("Benchmark", "Backend", "Size", "Result", "Latency p50 / p95 / p99", "Peak memory", "Target", "Met")


@dataclass(frozen=True)
class Row:
    benchmark: str
    backend: str
    size: str
    result: str
    latency: str = ""
    memory: str = ""
    target: str = ""
    #: True, False, or None when the row has no target.
    met: bool | None = None

    def cells(self) -> list[str]:
        met = "" if self.met is None else ("yes" if self.met else "**no**")
        return [self.benchmark, self.backend, self.size, self.result, self.latency, self.memory, self.target, met]


def markdown_table(rows: Sequence[Row]) -> str:
    """The rows as one Markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def render(machine: Mapping[str, str], settings: Mapping[str, str], rows: Sequence[Row], remarks: Sequence[str],
           notes: str) -> str:
    """The whole RESULTS.md."""
    parts = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench`); docs/bench.md explains each row.",
        "",
        "## Machine",
        "",
        *(f"- {label}: {value}" for label, value in machine.items()),
        "",
        "## Run",
        "",
        *(f"- {label}: {value}" for label, value in settings.items()),
        "",
        "## Results",
        "",
        markdown_table(rows),
        "",
    ]
    if remarks:
        parts += ["Remarks from this run:", "", *(f"- {remark}" for remark in remarks), ""]
    parts += [NOTES_MARKER, notes.strip("\n"), ""]
    return "\n".join(parts)


def kept_notes(path: Path) -> str:
    """The hand-written part of an existing RESULTS.md (empty when there is none)."""
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8")
    return text.split(NOTES_MARKER, 1)[1] if NOTES_MARKER in text else ""


def milliseconds(p50: float, p95: float, p99: float) -> str:
    return f"{p50:.0f} / {p95:.0f} / {p99:.0f} ms"
