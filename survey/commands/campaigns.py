"""`flask campaign create`: open a campaign on a questionnaire file (or the packaged EVN one)."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import with_appcontext

from ..questionnaire import QuestionnaireError, load_questionnaire_file
from ..services.campaigns import CampaignError, create_campaign


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise click.ClickException(
            f"{option} '{value}' is not a date; write it as YYYY-MM-DD, e.g. 2017-03-01"
        ) from None


@click.command("create")
@click.argument("code")
@click.option(
    "--questionnaire",
    "questionnaire_path",
    default="default",
    show_default=True,
    help="Questionnaire TOML file, or 'default' for the packaged EVN questionnaire.",
)
@click.option("--target", type=float, default=7.5, show_default=True, help="The planned score, e.g. 7.5.")
@click.option(
    "--margin", type=float, default=0.3, show_default=True, help="Smallest difference that matters, in points."
)
@click.option("--name-vi", help="Vietnamese name (default: 'Khảo sát mức độ hài lòng khách hàng CODE').")
@click.option("--name-en", help="English name.")
@click.option("--starts", help="First day, YYYY-MM-DD.")
@click.option("--ends", help="Last day, YYYY-MM-DD.")
@click.option("--household-share", type=float, help="Share of households in the population (0–1), e.g. 0.85.")
@with_appcontext
def create_command(
    code: str,
    questionnaire_path: str,
    target: float,
    margin: float,
    name_vi: str | None,
    name_en: str | None,
    starts: str | None,
    ends: str | None,
    household_share: float | None,
) -> None:
    """Open campaign CODE on a questionnaire; a malformed file is refused with the place and the reason."""
    starts_on, ends_on = _date(starts, "--starts"), _date(ends, "--ends")
    spec = None
    if questionnaire_path != "default":
        try:
            spec = load_questionnaire_file(questionnaire_path)
        except QuestionnaireError as exc:
            raise click.ClickException(str(exc)) from None
    try:
        campaign = create_campaign(
            code,
            questionnaire=spec,
            name_vi=name_vi,
            name_en=name_en,
            target=target,
            margin=margin,
            starts_on=starts_on,
            ends_on=ends_on,
            household_share=household_share,
            actor="cli",
        )
    except CampaignError as exc:
        raise click.ClickException(str(exc)) from None
    questionnaire = campaign.questionnaire
    click.echo(
        f"Opened campaign {campaign.code} on questionnaire {questionnaire.code} v{questionnaire.version} "
        f"({len(questionnaire.items)} items), target {campaign.target_score:.2f}, margin {campaign.margin:g}."
    )


def register(groups: dict[str, click.Group]) -> None:
    """Add `flask campaign create`."""
    groups["campaign"].add_command(create_command)
