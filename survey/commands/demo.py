"""Commands of this area are added by their module's ``register``."""

from __future__ import annotations

import click


def register(groups: dict[str, click.Group]) -> None:
    """Add this module's commands to the CLI groups."""
