"""`flask assign`: generate a campaign's cross-scoring assignments."""

from __future__ import annotations

import csv
import secrets
from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from ..extensions import db
from ..models import Campaign
from ..services.assignments import AssignmentError, create_assignments


@click.command("assign")
@click.argument("code")
@click.option(
    "--raters-per-unit", default=2, show_default=True, type=click.IntRange(min=1), help="k: auditing units per unit"
)
@click.option("--quota", default=30, show_default=True, type=click.IntRange(min=0), help="Interviews per assignment")
@click.option("--seed", type=int, help="Seed for a reproducible design (one is chosen and printed if left out).")
@click.option("--out", "out_path", metavar="FILE.csv", help="Also write rater_unit,ratee_unit,quota to FILE.csv.")
@with_appcontext
def assign_command(code: str, raters_per_unit: int, quota: int, seed: int | None, out_path: str | None) -> None:
    """Generate the assignments of campaign CODE: each unit scored by k others, never itself, no reciprocal pairs."""
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.code == code))
    if campaign is None:
        raise click.ClickException(f"no campaign '{code}'; create it first (flask campaign create)")
    if seed is None:
        seed = secrets.randbelow(1_000_000)
    out = Path(out_path) if out_path else None
    # Write beside the target and rename at the end, so a failure leaves neither a half file nor new assignments.
    partial = out.with_name(f".{out.name}.partial") if out is not None else None
    try:
        file = partial.open("w", newline="", encoding="utf-8") if partial is not None else None
    except OSError as exc:
        raise click.ClickException(f"{out_path}: cannot write there ({exc.strerror}); nothing changed") from None
    try:
        try:
            assignments = create_assignments(campaign, raters_per_unit, quota, seed, actor="cli")
        except AssignmentError as exc:
            db.session.rollback()
            raise click.ClickException(str(exc)) from None
        if file is not None and out is not None and partial is not None:
            writer = csv.writer(file)
            writer.writerow(["rater_unit", "ratee_unit", "quota"])
            for assignment in assignments:
                writer.writerow([assignment.rater_unit.code, assignment.ratee_unit.code, assignment.quota])
            file.close()
            partial.replace(out)
    finally:
        if file is not None:
            file.close()
        if partial is not None and partial.exists():
            partial.unlink()
    units = len({a.ratee_unit_id for a in assignments})
    click.echo(
        f"{len(assignments)} assignments for {units} units, {raters_per_unit} auditing units each, quota {quota} "
        f"(seed {seed})" + (f"; written to {out_path}" if out is not None else "") + "."
    )


def register(groups: dict[str, click.Group]) -> None:
    """Add `flask assign`."""
    groups["root"].add_command(assign_command)
