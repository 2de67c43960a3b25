"""The power companies: read the units file and add or update units, all or nothing."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources

import sqlalchemy as sa

from ..extensions import db
from ..models import Unit

#: The 27 units of EVNNPC, in the format `flask units import` reads.
UNITS_CSV = resources.files("survey").joinpath("data", "units.csv")
UNIT_COLUMNS = ("unit_code", "name_vi", "name_en", "households")
UNIT_CODE_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
#: Control characters (NUL, escapes), surrogates and private-use characters have no place in a name.
CONTROL_CATEGORIES = frozenset({"Cc", "Cs", "Co"})
#: More households than this is a typing error (EVNNPC serves about 9 million in all); it also fits INTEGER.
MAX_HOUSEHOLDS = 100_000_000


@dataclass(frozen=True)
class UnitRow:
    code: str
    name_vi: str
    name_en: str
    households: int | None


class UnitsFileError(ValueError):
    """A units file with bad rows; ``problems`` lists each as 'line N, column: why'."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s): " + "; ".join(problems[:20]))
        self.problems = problems


def read_units_csv(data: bytes) -> list[UnitRow]:
    """Parse a units file; raise UnitsFileError listing every bad row."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnitsFileError([f"byte {exc.start}: the file is not UTF-8 (save it as 'CSV UTF-8')"]) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = tuple(reader.fieldnames or ())
    missing = [c for c in UNIT_COLUMNS if c not in header]
    if missing:
        raise UnitsFileError([f"line 1: missing column(s) {', '.join(missing)}; expected {','.join(UNIT_COLUMNS)}"])
    problems: list[str] = []
    rows: list[UnitRow] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        code = (row.get("unit_code") or "").strip()
        if not UNIT_CODE_PATTERN.match(code):
            problems.append(f"line {line}, unit_code: '{code}' is not an ASCII slug such as bac-giang")
        elif code in seen:
            problems.append(f"line {line}, unit_code: '{code}' already on line {seen[code]}")
        else:
            seen[code] = line
        names = {}
        for column in ("name_vi", "name_en"):
            value = (row.get(column) or "").strip()
            if not value or len(value) > 120:
                problems.append(f"line {line}, {column}: must be 1–120 characters")
            elif any(unicodedata.category(character) in CONTROL_CATEGORIES for character in value):
                problems.append(f"line {line}, {column}: contains a control character")
            names[column] = value
        raw = (row.get("households") or "").strip()
        households = None
        if raw:
            if not (raw.isascii() and raw.isdigit()):
                problems.append(f"line {line}, households: '{raw[:40]}' is not a whole number")
            elif int(raw) > MAX_HOUSEHOLDS:
                problems.append(f"line {line}, households: {raw[:40]} is more than {MAX_HOUSEHOLDS:,}")
            else:
                households = int(raw)
        rows.append(UnitRow(code, names["name_vi"], names["name_en"], households))
    if problems:
        raise UnitsFileError(problems)
    if not rows:
        raise UnitsFileError(["the file has a header but no units"])
    return rows


def upsert_units(rows: list[UnitRow]) -> tuple[int, int]:
    """Add new units and update existing ones by code; return (added, updated). The caller commits."""
    existing = {u.code: u for u in db.session.scalars(sa.select(Unit))}
    added = updated = 0
    for row in rows:
        unit = existing.get(row.code)
        if unit is None:
            db.session.add(Unit(code=row.code, name_vi=row.name_vi, name_en=row.name_en, households=row.households))
            added += 1
        else:
            unit.name_vi, unit.name_en, unit.households = row.name_vi, row.name_en, row.households
            updated += 1
    return added, updated
