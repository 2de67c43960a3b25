"""Helpers shared by the HQ pages: finding a campaign's objects by URL, and who is acting."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort
from flask_login import current_user

from ..extensions import db
from ..models import Assignment, Campaign, Response, User


def campaign_or_404(code: str) -> Campaign:
    """The campaign with this code, or a 404 page."""
    return db.first_or_404(sa.select(Campaign).where(Campaign.code == code))


def assignment_or_404(campaign: Campaign, assignment_id: int) -> Assignment:
    """The campaign's assignment with this id; an id from another campaign is not found."""
    assignment = db.get_or_404(Assignment, assignment_id)
    if assignment.campaign_id != campaign.id:
        abort(404)
    return assignment


def response_or_404(campaign: Campaign, response_id: int) -> Response:
    """The campaign's response with this id; an id from another campaign is not found."""
    response = db.get_or_404(Response, response_id)
    if response.campaign_id != campaign.id:
        abort(404)
    return response


def acting_user() -> User:
    """The signed-in staff member, for the audit trail."""
    return current_user._get_current_object()  # type: ignore[no-any-return]
