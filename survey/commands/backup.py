"""`flask backup PATH` and `flask restore PATH`: a copy of the whole database, and putting one back."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..services.backup import BackupError, backup_database, restore_database


@click.command("backup")
@click.argument("path", metavar="PATH")
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
@with_appcontext
def backup_command(path: str, force: bool) -> None:
    """Write a consistent copy of the whole database to PATH (SQLite online backup, or pg_dump)."""
    try:
        result = backup_database(path, overwrite=force)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Backed up the {result.backend} database to {result.path} ({result.size:,} bytes, "
               f"sha256 {result.sha256[:16]}…, schema {result.revision}).")


@click.command("restore")
@click.argument("path", metavar="PATH")
@click.option("--yes", is_flag=True, help="Replace the data the database holds now with the backup.")
@with_appcontext
def restore_command(path: str, yes: bool) -> None:
    """Replace the whole database with a backup made by `flask backup` (same kind of database)."""
    try:
        result = restore_database(path, overwrite=yes)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Restored the {result.backend} database from {result.path} (schema {result.revision}). "
               "Run 'flask init-db' if the application is newer than the backup.")


def register(groups: dict[str, click.Group]) -> None:
    """Add `flask backup` and `flask restore`."""
    groups["root"].add_command(backup_command)
    groups["root"].add_command(restore_command)
