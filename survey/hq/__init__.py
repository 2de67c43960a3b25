"""Headquarters' workspace at /hq/: campaigns, cross-scoring assignments, review and progress.

One module per page group registers its routes on ``bp``; services in survey/services/ do the work.
"""

from __future__ import annotations

from flask import Blueprint

from ..policy import Action, authorize

bp = Blueprint("hq", __name__, url_prefix="/hq")


@bp.before_request
def hq_only() -> None:
    """Ask the policy before any lookup, so nobody else learns which campaigns or ids exist."""
    authorize(Action.HQ_PAGES)


from . import assignments, campaigns, imports, progress, review, setup  # noqa: E402,F401  (register the routes on bp)
