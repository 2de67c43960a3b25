"""SQL sums and means of float columns that do not depend on the order the rows are read in.

Adding floats rounds at every step, so the same values summed in another order can differ in the
last digits. The order is the plan's: an index scan after an import, a sequential scan after a
restore (rows that were updated sit elsewhere in the table), a parallel scan split among
workers. On PostgreSQL each value is therefore rounded to a multiple of 2⁻⁴⁰ (about 10⁻¹²),
summed exactly as an integer, and the sum turned back into a float: the same data gives the
same report, to the last byte, whatever the plan, and the figures differ from plain float sums
by less than 10⁻¹² per value, far below what the report shows. It costs no measurable time (a
million rows, seven means: 0.64–0.70 s, as with AVG). Summing as ``numeric`` would be exact too,
but four times slower (a float becomes a numeric through its text). SQLite always reads the
report's rows in the order of its covering index (by id within a group), so its plain SUM and
AVG already repeat for the same rows.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction


class exact_sum(GenericFunction[float]):  # noqa: N801 — used like sa.func.sum
    """SUM(x) as a float, the same whatever the order of the rows (see the module); plain SUM elsewhere."""

    name = "sum"
    type = sa.Float()
    inherit_cache = True
    _register = False  # not sa.func.sum's replacement


class exact_avg(GenericFunction[float]):  # noqa: N801 — used like sa.func.avg
    """AVG(x) as a float, the same whatever the order of the rows (see the module); plain AVG elsewhere."""

    name = "avg"
    type = sa.Float()
    inherit_cache = True
    _register = False  # not sa.func.avg's replacement


#: Values are summed as whole multiples of 2⁻⁴⁰: a power of two, so scaling a float is exact and
#: only the rounding to a whole number changes it; 100 (the largest index) squared and scaled is
#: 1.1 × 10¹⁶, within a BIGINT (9.2 × 10¹⁸), and PostgreSQL sums BIGINTs without overflow (into numeric).
SCALE = 2.0**40


@compiles(exact_sum, "postgresql")
def _exact_sum_postgresql(element: GenericFunction[float], compiler: Any, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return (f"(CAST(sum(CAST(({value}) * CAST({SCALE!r} AS DOUBLE PRECISION) AS BIGINT)) AS DOUBLE PRECISION)"
            f" / CAST({SCALE!r} AS DOUBLE PRECISION))")


@compiles(exact_avg, "postgresql")
def _exact_avg_postgresql(element: exact_avg, compiler: Any, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return f"({_exact_sum_postgresql(element, compiler, **kw)} / NULLIF(count({value}), 0))"
