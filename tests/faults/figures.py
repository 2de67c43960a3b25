"""Figures of the fault and backup tests (faults injected, submissions acknowledged and stored), printed at the end."""

from __future__ import annotations

from collections import Counter

FIGURES: Counter[str] = Counter()
