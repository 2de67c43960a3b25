"""`flask init-db`: create or upgrade the schema."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create or upgrade the database schema (runs the migrations)."""
    upgrade(directory=current_app.extensions["migrate"].directory)
    click.echo("Database schema is up to date.")


def register(groups: dict[str, click.Group]) -> None:
    groups["root"].add_command(init_db_command)
