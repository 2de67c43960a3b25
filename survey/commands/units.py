"""`flask units import`: add or update the power companies from a CSV file, all or nothing."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from ..extensions import db
from ..services import audit
from ..services.units import UnitsFileError, read_units_csv, upsert_units
from .imports import ProblemList

#: A units file lists 27 companies; anything this large is the wrong file.
MAX_UNITS_FILE_BYTES = 5 * 1024 * 1024


@click.command("import")
@click.argument("path", metavar="FILE.csv")
@with_appcontext
def import_command(path: str) -> None:
    """Add or update units from FILE.csv (unit_code,name_vi,name_en,households); any bad row refuses the file."""
    file = Path(path)
    try:
        if file.stat().st_size > MAX_UNITS_FILE_BYTES:
            raise click.ClickException(
                f"{path}: larger than {MAX_UNITS_FILE_BYTES // 1024 // 1024} MB; is it the units file?"
            )
        data = file.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read the file ({exc.strerror})") from None
    try:
        rows = read_units_csv(data)
    except UnitsFileError as exc:
        raise ProblemList(f"{path}: {len(exc.problems)} problem(s), nothing changed", exc.problems) from None
    added, updated = upsert_units(rows)
    audit.record("import", "unit", None, after={"file": file.name, "added": added, "updated": updated}, actor="cli")
    db.session.commit()
    click.echo(f"Units: {added} added, {updated} updated.")


def register(groups: dict[str, click.Group]) -> None:
    """Add `flask units import`."""
    groups["units"].add_command(import_command)
