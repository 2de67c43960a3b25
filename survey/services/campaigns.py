"""Opening a campaign: a validated questionnaire, a period, a target and the reconciliation margin."""

from __future__ import annotations

import datetime as dt
import math
import re

import sqlalchemy as sa

from ..extensions import db
from ..models import Campaign, CampaignStatus, Response, Source, User
from ..questionnaire import (
    QuestionnaireError,
    QuestionnaireSpec,
    default_questionnaire_text,
    parse_questionnaire,
    store_questionnaire,
)
from . import audit

#: Campaign codes appear in URLs and file names: lower-case ASCII slugs such as ``2017`` or ``2017-pilot``.
CAMPAIGN_CODE_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
CAMPAIGN_CODE_MAX = 40


class CampaignError(ValueError):
    """A campaign that cannot be created as asked; the message says why and what to do."""


def default_questionnaire() -> QuestionnaireSpec:
    """The packaged EVN questionnaire, validated."""
    return parse_questionnaire(default_questionnaire_text())


def create_campaign(
    code: str,
    *,
    questionnaire: QuestionnaireSpec | None = None,
    name_vi: str | None = None,
    name_en: str | None = None,
    target: float = 7.5,
    margin: float = 0.3,
    starts_on: dt.date | None = None,
    ends_on: dt.date | None = None,
    household_share: float | None = None,
    status: CampaignStatus = CampaignStatus.OPEN,
    previous_campaign: Campaign | None = None,
    web_source: Source = Source.CONSULTANT,
    user: User | None = None,
    actor: str | None = None,
    commit: bool = True,
) -> Campaign:
    """Validate and store a campaign on a questionnaire (the default EVN one if none), with its audit event.

    Raises CampaignError (nothing stored) for a bad or duplicate code, a target outside the
    questionnaire's scale, a margin that is not positive, a period that ends before it starts,
    or a questionnaire version that clashes with a stored one. ``commit=False`` leaves the
    commit to the caller (the demo loads everything in one transaction).
    """
    spec = questionnaire if questionnaire is not None else default_questionnaire()
    code = (code or "").strip()
    if not CAMPAIGN_CODE_PATTERN.match(code) or len(code) > CAMPAIGN_CODE_MAX:
        raise CampaignError(
            f"campaign code '{code[:60]}' is not valid: use lower-case letters, digits and '-', "
            f"at most {CAMPAIGN_CODE_MAX} characters (e.g. 2017)"
        )
    if db.session.scalar(sa.select(Campaign.id).where(Campaign.code == code)) is not None:
        raise CampaignError(f"campaign {code} already exists; choose another code")
    if not _finite(target) or not spec.scale_min <= target <= spec.scale_max:
        raise CampaignError(f"target {target} is outside the questionnaire's scale {spec.scale_min}–{spec.scale_max}")
    if not _finite(margin) or margin <= 0:
        raise CampaignError(f"margin {margin} must be a positive number of points (e.g. 0.3)")
    if margin >= spec.scale_max - spec.scale_min:
        raise CampaignError(f"margin {margin} is wider than the whole scale {spec.scale_min}–{spec.scale_max}")
    if starts_on is not None and ends_on is not None and ends_on < starts_on:
        raise CampaignError(f"the campaign ends ({ends_on}) before it starts ({starts_on}); check --starts and --ends")
    if household_share is not None and (not _finite(household_share) or not 0 <= household_share <= 1):
        raise CampaignError(f"household share {household_share} must be between 0 and 1 (e.g. 0.85)")
    names = {"name_vi": name_vi, "name_en": name_en}
    for field, value in names.items():
        if value is not None and (not value.strip() or len(value.strip()) > 200):
            raise CampaignError(f"{field.replace('_', '-')} must be 1–200 characters")
    try:
        stored = store_questionnaire(spec)
    except QuestionnaireError as exc:
        # Raised before anything is added to the session, so there is nothing to undo.
        raise CampaignError(f"questionnaire {exc}") from None
    campaign = Campaign(
        code=code,
        name_vi=(name_vi or "").strip() or f"Khảo sát mức độ hài lòng khách hàng {code}",
        name_en=(name_en or "").strip() or f"Customer satisfaction survey {code}",
        questionnaire=stored,
        target_score=float(target),
        margin=float(margin),
        starts_on=starts_on,
        ends_on=ends_on,
        household_share=None if household_share is None else float(household_share),
        status=status,
        previous_campaign=previous_campaign,
        web_source=web_source,
    )
    db.session.add(campaign)
    db.session.flush()
    audit.record("create", "campaign", campaign.code, after=campaign_snapshot(campaign), user=user, actor=actor)
    if commit:
        db.session.commit()
    return campaign


def campaign_snapshot(campaign: Campaign) -> dict[str, object]:
    """The fields of a campaign the audit trail records."""
    return {
        "code": campaign.code,
        "name_vi": campaign.name_vi,
        "name_en": campaign.name_en,
        "questionnaire": f"{campaign.questionnaire.code} v{campaign.questionnaire.version}",
        "target_score": campaign.target_score,
        "margin": campaign.margin,
        "starts_on": campaign.starts_on,
        "ends_on": campaign.ends_on,
        "household_share": campaign.household_share,
        "status": str(campaign.status),
        "previous_campaign": campaign.previous_campaign.code if campaign.previous_campaign else None,
        "web_source": str(campaign.web_source),
    }


def has_responses(campaign: Campaign) -> bool:
    """True once the campaign holds any response: from then on its questionnaire is fixed."""
    return bool(db.session.scalar(sa.select(sa.exists().where(Response.campaign_id == campaign.id))))


def update_campaign(
    campaign: Campaign,
    *,
    name_vi: str,
    name_en: str,
    target: float,
    margin: float,
    starts_on: dt.date | None,
    ends_on: dt.date | None,
    status: CampaignStatus,
    previous_campaign: Campaign | None,
    household_share: float | None,
    questionnaire: QuestionnaireSpec | None = None,
    user: User | None = None,
) -> Campaign:
    """Change a campaign's settings (and its questionnaire while it has no response), audit the change; commit.

    Raises CampaignError (nothing changed) for the same bad values as create_campaign, a previous
    campaign that is the campaign itself or comes after it, or a new questionnaire once responses exist.
    """
    scale = questionnaire or campaign.questionnaire
    if not _finite(target) or not scale.scale_min <= target <= scale.scale_max:
        raise CampaignError(f"target {target} is outside the questionnaire's scale {scale.scale_min}–{scale.scale_max}")
    if not _finite(margin) or not 0 < margin < scale.scale_max - scale.scale_min:
        raise CampaignError(f"margin {margin} must be a positive number of points smaller than the scale")
    if starts_on is not None and ends_on is not None and ends_on < starts_on:
        raise CampaignError(f"the campaign ends ({ends_on}) before it starts ({starts_on})")
    if household_share is not None and (not _finite(household_share) or not 0 <= household_share <= 1):
        raise CampaignError(f"household share {household_share} must be between 0 and 1 (e.g. 0.85)")
    for field, value in (("name-vi", name_vi), ("name-en", name_en)):
        if not (value or "").strip() or len(value.strip()) > 200:
            raise CampaignError(f"{field} must be 1–200 characters")
    if previous_campaign is not None and _follows(previous_campaign, campaign):
        raise CampaignError(f"campaign {previous_campaign.code} cannot come before {campaign.code}: it follows it")
    stored = None
    if questionnaire is not None and questionnaire.checksum != campaign.questionnaire.checksum:
        if has_responses(campaign):
            raise CampaignError("the campaign has responses: its questionnaire can no longer change")
        try:
            stored = store_questionnaire(questionnaire)
        except QuestionnaireError as exc:
            raise CampaignError(f"questionnaire {exc}") from None
    before = campaign_snapshot(campaign)
    campaign.name_vi, campaign.name_en = name_vi.strip(), name_en.strip()
    campaign.target_score, campaign.margin = float(target), float(margin)
    campaign.starts_on, campaign.ends_on = starts_on, ends_on
    campaign.status = status
    campaign.previous_campaign = previous_campaign
    campaign.household_share = None if household_share is None else float(household_share)
    if stored is not None:
        campaign.questionnaire = stored
    db.session.flush()
    after = campaign_snapshot(campaign)
    changed = {key for key in after if after[key] != before[key]}
    if changed:
        audit.record(
            "edit",
            "campaign",
            campaign.code,
            before={key: before[key] for key in sorted(changed)},
            after={key: after[key] for key in sorted(changed)},
            user=user,
        )
    db.session.commit()
    return campaign


def _follows(candidate: Campaign, campaign: Campaign) -> bool:
    """True when ``candidate`` is ``campaign`` or has it somewhere in its chain of previous campaigns."""
    seen: set[int] = set()
    current: Campaign | None = candidate
    while current is not None and current.id not in seen:
        if current.id == campaign.id:
            return True
        seen.add(current.id)
        current = current.previous_campaign
    return False


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
