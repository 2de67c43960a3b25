"""`flask invitations`: issue a unit's single-use survey links as a CSV, with printable QR codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from ..extensions import db
from ..models import CustomerGroup, Unit
from ..services.invitation_files import InvitationFileError, check_request, issue_invitation_files
from .imports import find_campaign

#: More QR codes than this get a progress bar.
PROGRESS_FROM = 500


@click.command("invitations")
@click.argument("code")
@click.option("--unit", "unit_code", required=True, help="The unit whose customers get the links, e.g. bac-giang.")
@click.option("--count", type=int, required=True, help="How many links (1–100,000).")
@click.option(
    "--out", required=True, metavar="FILE.csv", help="CSV to write: token,link,unit_code,customer_group,expires_at."
)
@click.option(
    "--group",
    type=click.Choice([g.value for g in CustomerGroup]),
    default=CustomerGroup.HOUSEHOLD.value,
    show_default=True,
    help="Customer group of the people who get the links.",
)
@click.option("--days", type=int, help="Days the links stay valid (default from the configuration, 60).")
@click.option("--qr", "qr_dir", metavar="DIR", help="Also write one QR code per link as SVG files into DIR.")
@click.option("--qr-pdf", metavar="FILE.pdf", help="Also write the QR codes on printable A4 sheets with captions.")
@with_appcontext
def invitations_command(
    code: str,
    unit_code: str,
    count: int,
    out: str,
    group: str,
    days: int | None,
    qr_dir: str | None,
    qr_pdf: str | None,
) -> None:
    """Issue COUNT single-use survey links of campaign CODE for a unit's customers."""
    campaign = find_campaign(code)
    unit = db.session.scalar(sa.select(Unit).where(Unit.code == unit_code.strip()))
    if unit is None:
        raise click.ClickException(f"there is no unit {unit_code}; see survey/data/units.csv or 'flask units import'")
    paths = {"out": Path(out), "qr_dir": Path(qr_dir) if qr_dir else None, "qr_pdf": Path(qr_pdf) if qr_pdf else None}
    try:
        # Checked before the progress bar starts, so a refusal stays one line.
        check_request(campaign, count, days, **paths)
    except InvitationFileError as exc:
        raise click.ClickException(f"{exc}; no link was issued") from None
    drawn = count * ((qr_dir is not None) + (qr_pdf is not None))
    bar: Any = None
    if drawn > PROGRESS_FROM:
        bar = click.progressbar(length=drawn, label="Drawing QR codes", file=sys.stderr)
    try:
        if bar is not None:
            bar.__enter__()
        result = issue_invitation_files(
            campaign,
            unit,
            count,
            customer_group=CustomerGroup(group),
            valid_days=days,
            **paths,
            actor="cli",
            progress=bar.update if bar is not None else None,
        )
    except InvitationFileError as exc:
        raise click.ClickException(f"{exc}; no link was issued") from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(
        f"Issued {result.count:,} links for {unit.code} ({group}) in campaign {campaign.code}, "
        f"valid until {result.expires_at:%Y-%m-%d}: {result.csv_path}"
    )
    if result.svg_dir is not None:
        click.echo(f"QR codes (SVG): {result.svg_dir}")
    if result.pdf_path is not None:
        pages = f"{result.pdf_pages} A4 page{'s' if result.pdf_pages != 1 else ''}"
        click.echo(f"QR codes (PDF, {pages}): {result.pdf_path}")


def register(groups: dict[str, click.Group]) -> None:
    """Add `flask invitations`."""
    groups["root"].add_command(invitations_command)
