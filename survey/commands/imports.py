"""`flask import consultant|cross CODE FILE.csv`: import responses, all or nothing."""

from __future__ import annotations

import sys
from typing import IO, Any

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from ..extensions import db
from ..models import Campaign, Source
from ..services.imports import ImportFileError, ImportResult, import_consultant, import_cross

#: Files with more rows than this get a progress bar while they are stored.
PROGRESS_FROM_ROWS = 50_000


class ProblemList(click.ClickException):
    """A one-line error followed by the list of problems (line N, column: why), all on stderr."""

    def __init__(self, message: str, problems: list[Any], unlisted: int = 0):
        super().__init__(message)
        self.problems = problems
        self.unlisted = unlisted

    def show(self, file: IO[Any] | None = None) -> None:
        super().show(file)
        for problem in self.problems:
            click.echo(f"  {problem}", err=True)
        if self.unlisted:
            click.echo(f"  … and {self.unlisted:,} more problems", err=True)


def find_campaign(code: str) -> Campaign:
    """The campaign with this code, or a one-line error."""
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.code == code))
    if campaign is None:
        raise click.ClickException(f"there is no campaign {code}; create it with 'flask campaign create {code}'")
    return campaign


def _run(kind: Source, code: str, path: str) -> None:
    campaign = find_campaign(code)
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if total <= PROGRESS_FROM_ROWS:
            return
        if bar is None:
            bar = click.progressbar(length=total, label="Storing", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    importer = import_consultant if kind == Source.CONSULTANT else import_cross
    try:
        result: ImportResult = importer(campaign, path, actor="cli", progress=progress)
    except ImportFileError as exc:
        if len(exc.problems) == 1 and exc.problems[0].line is None:
            raise click.ClickException(f"{path}: {exc.problems[0].reason}; nothing imported") from None
        raise ProblemList(f"{path}: {exc.summary}, nothing imported", exc.problems, exc.unlisted) from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    incomplete = f" ({result.incomplete:,} incomplete, without an index)" if result.incomplete else ""
    click.echo(f"Imported {result.rows:,} {kind} responses into {campaign.code}{incomplete}.")


@click.command("consultant")
@click.argument("code")
@click.argument("path", metavar="FILE.csv")
@with_appcontext
def consultant_command(code: str, path: str) -> None:
    """Import the consultant's responses: unit_code,respondent_id,customer_group,<items…>."""
    _run(Source.CONSULTANT, code, path)


@click.command("cross")
@click.argument("code")
@click.argument("path", metavar="FILE.csv")
@with_appcontext
def cross_command(code: str, path: str) -> None:
    """Import cross-scoring responses: rater_unit,ratee_unit,respondent_id,customer_group,<items…>[,interview_id]."""
    _run(Source.CROSS, code, path)


def register(groups: dict[str, click.Group]) -> None:
    """Add `flask import consultant` and `flask import cross`."""
    groups["import"].add_command(consultant_command)
    groups["import"].add_command(cross_command)
