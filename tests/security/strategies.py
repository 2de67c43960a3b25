"""Hypothesis strategies for bad input: junk text, form values, mutated CSV and TOML files, settings."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from .helpers import ATTACKS


def fuzz_settings(examples: int) -> settings:
    """A property's settings: bounded examples, no deadline (database round trips), fixed seed in CI."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=bool(os.environ.get("CI")),
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much, HealthCheck.large_base_example],
    )


#: Text a person or a script might send: anything printable or not, hostile strings, numbers of every kind.
junk_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(ATTACKS),
    st.text(alphabet="0123456789-+.,eE ", max_size=12),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(max_size=400),
)

#: One answer on a 1–10 scale as a form posts it: mostly plausible, often not.
score_value = st.one_of(st.integers(1, 10).map(str), st.just("na"), st.integers(-5, 20).map(str), junk_text)

#: A JSON value of any shape.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | junk_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(junk_text, children, max_size=4),
    max_leaves=12,
)


def maybe(strategy: st.SearchStrategy[Any], valid: Any) -> st.SearchStrategy[Any]:
    """A valid value half of the time, ``strategy`` otherwise (so a single bad field is often the only one)."""
    return st.one_of(st.just(valid), strategy)


def form_fields(required: dict[str, Any]) -> st.SearchStrategy[dict[str, str]]:
    """A form: each known field valid, junk or missing, plus some fields the form does not have."""
    @st.composite
    def build(draw: Any) -> dict[str, str]:
        fields: dict[str, str] = {}
        for name, valid in required.items():
            choice = draw(st.sampled_from(["valid", "valid", "junk", "missing"]))
            if choice == "valid":
                fields[name] = draw(valid) if isinstance(valid, st.SearchStrategy) else str(valid)
            elif choice == "junk":
                fields[name] = draw(junk_text)
        fields.update(draw(st.dictionaries(junk_text.filter(lambda k: k != "csrf_token"), junk_text, max_size=2)))
        return fields

    return build()


def csv_bytes(rows: Sequence[Sequence[str]], delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


@st.composite
def mutated_csv(draw: Any, header: list[str], good_row: Any, max_rows: int = 4) -> bytes:
    """A CSV file that starts valid and is then damaged a few times: cells, rows, header, bytes, encoding."""
    rows = [list(header)] + [list(draw(good_row)) for _ in range(draw(st.integers(0, max_rows)))]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["cell", "cell", "drop cell", "add cell", "drop row", "copy row", "header"]))
        r = draw(st.integers(0, len(rows) - 1))
        row = rows[r]
        if kind == "cell" and row:
            row[draw(st.integers(0, len(row) - 1))] = draw(junk_text)
        elif kind == "drop cell" and row:
            row.pop(draw(st.integers(0, len(row) - 1)))
        elif kind == "add cell":
            row.append(draw(junk_text))
        elif kind == "drop row" and len(rows) > 1:
            rows.pop(r)
        elif kind == "copy row":
            rows.append(list(row))
        elif kind == "header":
            rows[0] = [draw(st.sampled_from([*header, "", "unit", "UNIT_CODE", "x"])) for _ in rows[0]]
    data = csv_bytes(rows, delimiter=draw(st.sampled_from([",", ",", ",", ";", "\t"])))
    damage = draw(st.sampled_from(["none", "none", "none", "bytes", "truncate", "bom", "latin-1", "empty"]))
    if damage == "bytes":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    elif damage == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "bom":
        data = b"\xef\xbb\xbf" + data
    elif damage == "latin-1":
        data = data.decode("utf-8").encode("latin-1", "replace") + "Bắc Giang".encode("cp1258", "replace")
    elif damage == "empty":
        data = b""
    return data


@st.composite
def mutated_toml(draw: Any, text: str) -> str:
    """The packaged questionnaire with lines deleted, copied, changed or cut, or plain junk."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=300))
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "copy", "value", "junk", "cut", "key"]))
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "delete":
            lines.pop(i)
        elif kind == "copy":
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
        elif kind == "value" and "=" in lines[i]:
            key = lines[i].split("=", 1)[0]
            value = draw(st.one_of(st.integers(-(10**20), 10**20).map(str), st.floats().map(str),
                                   junk_text.map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
                                   st.sampled_from(["true", "[]", "{}", '""', "{ vi = 1 }", "nan", "inf"])))
            lines[i] = f"{key}= {value}"
        elif kind == "junk":
            lines.insert(i, draw(junk_text))
        elif kind == "cut":
            lines = lines[: i + 1]
            lines[-1] = lines[-1][: draw(st.integers(0, len(lines[-1])))]
        elif kind == "key" and "=" in lines[i]:
            lines[i] = draw(st.sampled_from(["code", "weight", "scale", "title", "items", "zzz", "text"])) + \
                " =" + lines[i].split("=", 1)[1]
        if not lines:
            lines = [""]
    return "\n".join(lines)
