"""`flask users create` and `flask users api-key create|revoke|list`: staff accounts and API keys."""

from __future__ import annotations

import sys

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from ..extensions import db
from ..models import ApiKey, Role, Unit
from ..services import audit
from ..services.users import AccountError, create_api_key, create_user, revoke_api_key, user_snapshot


@click.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice([role.value for role in Role]), help="hq, auditor or manager")
@click.option("--unit", "unit_code", metavar="CODE", help="The unit of an auditor or manager, e.g. bac-giang.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@with_appcontext
def create_command(email: str, role: str, unit_code: str | None, password_stdin: bool) -> None:
    """Create a staff account; without --password-stdin the password is asked for twice, hidden."""
    unit = None
    if unit_code is not None:
        unit = db.session.scalar(sa.select(Unit).where(Unit.code == unit_code.strip().lower()))
        if unit is None:
            raise click.ClickException(f"unknown unit '{unit_code}'; load the units first (flask units import)")
    if role != Role.HQ and unit is None:
        raise click.ClickException(f"a {role} account belongs to a unit: add --unit CODE")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(email, Role(role), unit, password)
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    audit.record("create", "user", user.id, after=user_snapshot(user), actor="cli")
    db.session.commit()
    where = f" of {unit.code}" if unit is not None else ""
    click.echo(f"Created {user.role} account {user.email}{where}.")


@click.group("api-key")
def api_key_group() -> None:
    """Keys for the read-only JSON API."""


@api_key_group.command("create")
@click.argument("name")
@with_appcontext
def api_key_create(name: str) -> None:
    """Create an API key called NAME and print it once; only its hash is kept."""
    try:
        api_key, key = create_api_key(name)
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    audit.record("create", "api_key", api_key.id, after={"name": api_key.name, "prefix": api_key.prefix}, actor="cli")
    db.session.commit()
    click.echo(f"API key '{api_key.name}' created. Copy it now; it will not be shown again:")
    click.echo(key)


@api_key_group.command("revoke")
@click.argument("prefix")
@with_appcontext
def api_key_revoke(prefix: str) -> None:
    """Revoke the active API key whose prefix is PREFIX (see `flask users api-key list`)."""
    try:
        api_key = revoke_api_key(prefix)
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    audit.record(
        "revoke", "api_key", api_key.id, before={"revoked_at": None},
        after={"name": api_key.name, "prefix": api_key.prefix, "revoked_at": api_key.revoked_at}, actor="cli",
    )
    db.session.commit()
    click.echo(f"API key '{api_key.name}' ({api_key.prefix}…) revoked.")


@api_key_group.command("list")
@with_appcontext
def api_key_list() -> None:
    """List API keys: prefix, name, created, revoked."""
    keys = db.session.scalars(sa.select(ApiKey).order_by(ApiKey.id)).all()
    if not keys:
        click.echo("No API keys. Create one with: flask users api-key create NAME")
        return
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        click.echo(f"{key.prefix}…  {key.name}  created {key.created_at:%Y-%m-%d %H:%M}  {state}")


def register(groups: dict[str, click.Group]) -> None:
    """Add `flask users create` and `flask users api-key …`."""
    groups["users"].add_command(create_command)
    groups["users"].add_command(api_key_group)
