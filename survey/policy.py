"""Who may do what: the one place that decides access, asked by every view.

A decision depends on the user's role and unit and, for unit-bound actions, on the object:
an auditor works only on assignments of their own unit; a manager reads only their own unit.
"""

from __future__ import annotations

from typing import Any

from flask import abort
from flask_login import current_user

from .extensions import login_manager
from .models import Assignment, AssignmentStatus, Role, StrEnum, Unit


class Action(StrEnum):
    """Everything a staff member can ask to do."""

    HQ_PAGES = "hq_pages"  # HQ workspace: campaigns, progress, reports, set-up
    MANAGE_CAMPAIGNS = "manage_campaigns"  # create campaigns, upload data, change assignments
    REVIEW_RESPONSES = "review_responses"  # review states of cross responses
    REOPEN_ASSIGNMENT = "reopen_assignment"
    EXPORT_RAW = "export_raw"  # raw responses, for analysts
    MANAGE_API_KEYS = "manage_api_keys"
    AUDIT_WORKSPACE = "audit_workspace"  # the auditor's list of assignments
    VIEW_ASSIGNMENT = "view_assignment"
    ENTER_INTERVIEWS = "enter_interviews"  # add or edit interviews of an open assignment
    SUBMIT_ASSIGNMENT = "submit_assignment"
    VIEW_UNIT_RESULTS = "view_unit_results"  # a unit's scores, status and rank


#: Actions HQ may take on anything.
HQ_ACTIONS = {
    Action.HQ_PAGES,
    Action.MANAGE_CAMPAIGNS,
    Action.REVIEW_RESPONSES,
    Action.REOPEN_ASSIGNMENT,
    Action.EXPORT_RAW,
    Action.MANAGE_API_KEYS,
    Action.VIEW_ASSIGNMENT,
    Action.VIEW_UNIT_RESULTS,
}


def can(user: Any, action: Action, obj: Any = None) -> bool:
    """True when ``user`` may take ``action`` (on ``obj``, where the action concerns one)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.role == Role.HQ:
        return action in HQ_ACTIONS
    if user.role == Role.AUDITOR:
        if action == Action.AUDIT_WORKSPACE:
            return True
        if action in (Action.VIEW_ASSIGNMENT, Action.ENTER_INTERVIEWS, Action.SUBMIT_ASSIGNMENT):
            if not isinstance(obj, Assignment) or obj.rater_unit_id != user.unit_id:
                return False
            # A unit never scores itself, even if an assignment were mis-made.
            if obj.ratee_unit_id == user.unit_id:
                return False
            if action == Action.VIEW_ASSIGNMENT:
                return True
            return obj.status == AssignmentStatus.OPEN
        return False
    if user.role == Role.MANAGER:
        if action == Action.VIEW_UNIT_RESULTS:
            return isinstance(obj, Unit) and obj.id == user.unit_id
        return False
    return False


def authorize(action: Action, obj: Any = None) -> None:
    """Stop the request unless the current user may take ``action``: log in first (401) or 403."""
    if not current_user.is_authenticated:
        abort(login_manager.unauthorized())
    if not can(current_user, action, obj):
        abort(403)
