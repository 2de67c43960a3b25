"""`flask audit verify`: check that the audit trail and the audited rows are untouched."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..services.audit import verify_chain


@click.command("verify")
@with_appcontext
def verify_command() -> None:
    """Recompute the hash chain and compare audited responses and assignments with their last event."""
    result = verify_chain()
    if not result.ok:
        raise click.ClickException(f"BROKEN after {result.checked:,} events: {result.reason}")
    click.echo(f"OK: {result.checked:,} events, chain intact")


def register(groups: dict[str, click.Group]) -> None:
    """Add `flask audit verify`."""
    groups["audit"].add_command(verify_command)
