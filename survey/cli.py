"""The `flask` command line: groups and commands from survey/commands/, one module per area."""

from __future__ import annotations

import importlib

import click
from flask import Flask
from flask.cli import AppGroup

#: Modules in survey/commands/ that each define ``register(groups)``.
COMMAND_MODULES = ("database", "units", "campaigns", "invitations", "imports", "demo", "users", "assignments", "audit", "report", "backup")


def init_app(app: Flask) -> None:
    """Attach every command group to the application's CLI."""
    groups = {
        "root": app.cli,
        "units": AppGroup("units", help="Manage the power companies (units)."),
        "users": AppGroup("users", help="Manage staff accounts and API keys."),
        "campaign": AppGroup("campaign", help="Open and manage campaigns."),
        "import": AppGroup("import", help="Import responses from CSV files (all or nothing)."),
        "audit": AppGroup("audit", help="Inspect the audit trail."),
    }
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"survey.commands.{name}")
        module.register(groups)
    for name, group in groups.items():
        if name != "root" and group.commands:
            app.cli.add_command(group)


def fail(message: str) -> click.ClickException:
    """A one-line error for the terminal; the command exits with status 1."""
    return click.ClickException(message)
