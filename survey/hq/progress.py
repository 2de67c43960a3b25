"""HQ: progress of a campaign's two programmes against their quotas; late and empty assignments first."""

from __future__ import annotations

from flask import render_template
from flask_babel import get_locale

from ..policy import Action, authorize
from ..services.progress import campaign_progress, programmes_progress
from . import bp
from .common import campaign_or_404


@bp.route("/campaigns/<code>/progress")
def progress(code: str) -> str:
    """Show both programmes per unit against their quotas, and cross interviews per assignment and unit."""
    campaign = campaign_or_404(code)
    authorize(Action.HQ_PAGES, campaign)
    locale = str(get_locale() or "vi")
    return render_template(
        "hq/progress.html",
        campaign=campaign,
        progress=campaign_progress(campaign, locale=locale),
        programmes=programmes_progress(campaign, locale=locale),
    )
