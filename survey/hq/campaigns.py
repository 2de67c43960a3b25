"""HQ home: the campaigns, with links to their assignments, review and progress."""

from __future__ import annotations

from flask import render_template

from ..policy import Action, authorize
from ..services.progress import campaign_overview
from . import bp


@bp.route("/")
def index() -> str:
    """List the campaigns with their cross-scoring counts."""
    authorize(Action.HQ_PAGES)
    rows = campaign_overview()
    return render_template("hq/index.html", rows=rows)
