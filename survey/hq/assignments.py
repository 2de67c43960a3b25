"""HQ: a campaign's cross-scoring assignments — generate, change one, reopen a submitted one."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from wtforms import SelectChoice

from ..extensions import db
from ..models import Campaign
from ..policy import Action, authorize
from ..services.assignments import (
    CONSULTANT_N,
    AssignmentError,
    campaign_assignments,
    create_assignments,
    has_assignments,
    possible_raters,
    recommended_design,
    reopen_assignment,
    update_assignment,
    work_started,
)
from . import bp
from .common import acting_user, assignment_or_404, campaign_or_404
from .forms import EditAssignmentForm, GenerateAssignmentsForm, ReopenForm


def _page(campaign: Campaign, form: GenerateAssignmentsForm, status: int = 200) -> tuple[str, int]:
    assignments = campaign_assignments(campaign)
    return (
        render_template(
            "hq/assignments.html",
            campaign=campaign,
            assignments=assignments,
            form=form,
            advice=recommended_design(campaign),
            consultant_n=CONSULTANT_N,
            reopen_form=ReopenForm(),
        ),
        status,
    )


@bp.route("/campaigns/<code>/assignments")
def assignments(code: str) -> tuple[str, int]:
    """List the campaign's assignments, with the form to generate them and the recommended design."""
    campaign = campaign_or_404(code)
    authorize(Action.HQ_PAGES, campaign)
    return _page(campaign, GenerateAssignmentsForm())


@bp.route("/campaigns/<code>/assignments", methods=["POST"])
def generate_assignments(code: str) -> Response | tuple[str, int]:
    """Generate (or replace, before work starts) the campaign's assignments."""
    campaign = campaign_or_404(code)
    authorize(Action.MANAGE_CAMPAIGNS, campaign)
    form = GenerateAssignmentsForm()
    if not form.validate_on_submit():
        return _page(campaign, form, 400)
    if has_assignments(campaign) and not form.replace.data:
        form.replace.errors = [_("The campaign has assignments already: tick this box to replace them.")]
        return _page(campaign, form, 409)
    try:
        created = create_assignments(
            campaign,
            form.raters_per_unit.data,
            form.quota.data,
            form.seed.data,
            user=acting_user(),
            due_on=form.due_on.data,
        )
    except AssignmentError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _page(campaign, form, 409)
    flash(_("%(n)s assignments created.", n=len(created)), "success")
    return redirect(url_for("hq.assignments", code=campaign.code))


@bp.route("/campaigns/<code>/assignments/<int:assignment_id>", methods=["GET", "POST"])
def edit_assignment(code: str, assignment_id: int) -> Response | tuple[str, int]:
    """Change one assignment's auditing unit, quota or due date, until work on it starts."""
    campaign = campaign_or_404(code)
    assignment = assignment_or_404(campaign, assignment_id)
    authorize(Action.MANAGE_CAMPAIGNS, assignment)
    locale = str(get_locale() or "vi")
    form = EditAssignmentForm(obj=assignment)
    units = possible_raters(assignment)
    form.rater_unit.choices = [SelectChoice(unit.code, unit.name(locale)) for unit in units]
    if not form.is_submitted():
        form.rater_unit.data = assignment.rater_unit.code
    status = 200
    if form.validate_on_submit():
        rater = next(unit for unit in units if unit.code == form.rater_unit.data)
        try:
            update_assignment(
                assignment, quota=form.quota.data, due_on=form.due_on.data, rater_unit=rater, user=acting_user()
            )
        except AssignmentError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            status = 409
        else:
            flash(_("Assignment saved."), "success")
            return redirect(url_for("hq.assignments", code=campaign.code))
    elif form.is_submitted():
        status = 400
    return (
        render_template(
            "hq/assignment_edit.html",
            campaign=campaign,
            assignment=assignment,
            form=form,
            started=work_started(assignment),
        ),
        status,
    )


@bp.route("/campaigns/<code>/assignments/<int:assignment_id>/reopen", methods=["POST"])
def reopen(code: str, assignment_id: int) -> Response | tuple[str, int]:
    """Reopen a submitted assignment, with the reason, so its auditors can edit it again."""
    campaign = campaign_or_404(code)
    assignment = assignment_or_404(campaign, assignment_id)
    authorize(Action.REOPEN_ASSIGNMENT, assignment)
    form = ReopenForm()
    if not form.validate_on_submit():
        flash(_("Give the reason for reopening the assignment."), "error")
        return _page(campaign, GenerateAssignmentsForm(formdata=None), 400)
    try:
        reopen_assignment(assignment, form.reason.data, acting_user())
    except AssignmentError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _page(campaign, GenerateAssignmentsForm(formdata=None), 409)
    flash(_("Assignment reopened."), "success")
    return redirect(url_for("hq.assignments", code=campaign.code))

