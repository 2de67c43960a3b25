"""Unit managers' page: their own unit's scores by dimension and source, status, reason and rank.

Aggregates only: a manager never sees respondent-level data, and never another unit's page.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from .. import exports
from ..extensions import db
from ..models import Campaign, Unit
from ..policy import Action, authorize, can
from ..services import reports

bp = Blueprint("unit", __name__, url_prefix="/unit")


def _lang() -> str:
    return "en" if str(get_locale() or "vi") == "en" else "vi"


def _chosen_campaign() -> Campaign | None:
    """The campaign named in ``?campaign=``, else the latest one; an unknown code is a 404."""
    code = request.args.get("campaign")
    if code:
        campaign = reports.find_campaign(code)
        if campaign is None:
            abort(404, description=_("There is no campaign with the code “%(code)s”.", code=code[:40]))
        return campaign
    return reports.latest_campaign()


@bp.get("/")
def index() -> Response | str:
    """Send a manager to their unit's page; HQ picks a unit."""
    authorize(Action.VIEW_UNIT_RESULTS, current_user.unit if current_user.is_authenticated else None)
    if not can(current_user, Action.HQ_PAGES):
        # Only HQ chooses among units; a manager (authorised above for their own unit) goes straight there.
        return redirect(url_for("unit.page", unit_code=current_user.unit.code, **request.args))
    units = list(db.session.scalars(sa.select(Unit).order_by(Unit.code)))
    return render_template("unit/index.html", units=units, lang=_lang())


@bp.get("/<unit_code>")
def page(unit_code: str) -> str:
    """Show one unit's results in a campaign (``?campaign=CODE``, default the latest)."""
    unit = db.session.scalar(sa.select(Unit).where(Unit.code == unit_code))
    if unit is None:
        # Only HQ learns that a code does not exist; anyone else is refused as for another unit's page.
        authorize(Action.HQ_PAGES)
        abort(404, description=_("There is no unit with the code “%(code)s”.", code=unit_code[:40]))
    authorize(Action.VIEW_UNIT_RESULTS, unit)
    campaign = _chosen_campaign()
    lang = _lang()
    if campaign is None:
        return render_template("unit/page.html", unit=unit, campaign=None, lang=lang, campaigns=[])
    report = reports.build_report(campaign)
    result = report.reconciliation.unit(unit.code)
    return render_template(
        "unit/page.html",
        unit=unit,
        campaign=campaign,
        campaigns=reports.published_campaigns(),
        report=report,
        result=result,
        reason=result.reason if lang == "en" else result.reason_vi,
        dimensions=report.dimension_scores.dimensions,
        by_source={s: report.dimension_scores.of(unit.code, s) for s in reports.SOURCES},
        respondents={s: report.dimension_scores.respondents.get((unit.code, s), 0) for s in reports.SOURCES},
        incomplete=report.incomplete.get(unit.code, {}),
        lang=lang,
        number=exports.number,
        status_labels=exports.STATUS_LABELS,
    )
