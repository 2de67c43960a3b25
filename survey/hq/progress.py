"""HQ: cross-scoring progress of a campaign (n of quota), with late and empty assignments first."""

from __future__ import annotations

from flask import render_template
from flask_babel import get_locale

from ..policy import Action, authorize
from ..services.progress import campaign_progress
from . import bp
from .common import campaign_or_404


@bp.route("/campaigns/<code>/progress")
def progress(code: str) -> str:
    """Show interviews entered against quota per assignment, scored unit and auditing unit."""
    campaign = campaign_or_404(code)
    authorize(Action.HQ_PAGES, campaign)
    return render_template(
        "hq/progress.html", campaign=campaign, progress=campaign_progress(campaign, locale=str(get_locale() or "vi"))
    )
