"""`flask demo`: fill an empty database with the 27 units and realistic 2016 and 2017 campaigns."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from ..services.demo import DEFAULT_SEED, DemoError, database_is_empty, load_demo

STEPS = ("units", "campaigns", "accounts", "consultant 2016", "consultant 2017", "web answers", "assignments",
         "cross-scores")


@click.command("demo")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Same seed, same data.")
@click.option("--if-empty", is_flag=True, help="Do nothing (and succeed) when the database already has data.")
@with_appcontext
def demo_command(seed: int, if_empty: bool) -> None:
    """Load the 27 units, a closed 2016 and an open 2017 campaign with synthetic answers, and demo accounts."""
    if not database_is_empty():
        if if_empty:
            click.echo("The database already has data; demo data not loaded.")
            return
        raise click.ClickException(
            "the database already has data; the demo only fills an empty database "
            "(point DATABASE_URL at a new one, or delete instance/survey.sqlite)"
        )
    if not 0 <= seed < 2**32:
        raise click.ClickException(f"--seed {seed} is out of range; use a whole number from 0 to {2**32 - 1}")
    with click.progressbar(length=len(STEPS), label="Loading demo data", file=sys.stderr,
                           item_show_func=lambda step: step) as bar:
        def progress(step: str) -> None:
            bar.update(1, current_item=step)

        try:
            result = load_demo(seed, progress=progress)
        except DemoError as exc:
            raise click.ClickException(str(exc)) from None
        bar.update(max(len(STEPS) - bar.pos, 0))

    click.echo(f"Loaded {result.units} units and campaigns 2016 (closed) and 2017 (open), seed {result.seed}.")
    for name, count in result.responses.items():
        click.echo(f"  {count:>6,} {name} responses")
    click.echo(f"  {result.assignments:>6} cross-scoring assignments (2 auditing units per unit)")
    planted = result.planted
    if planted is not None:
        different = ", ".join(f"{code} {value:+.1f}" for code, value in planted.different)
        click.echo(
            f"Planted in the cross-scores: offset {planted.offset:+.2f} for all auditors; "
            f"lenient auditor {planted.lenient[0]} {planted.lenient[1]:+.1f}, harsh auditor {planted.harsh[0]} "
            f"{planted.harsh[1]:+.1f}; units scored differently from the consultant: {different}."
        )
    click.echo(f"Accounts (password {result.password}):")
    for email, role, unit in result.accounts:
        click.echo(f"  {email:<40} {role:<8} {unit or ''}")
    if result.survey_links:
        click.echo("Open survey links to try:")
        for link in result.survey_links:
            click.echo(f"  {link}")


def register(groups: dict[str, click.Group]) -> None:
    """Add `flask demo`."""
    groups["root"].add_command(demo_command)
