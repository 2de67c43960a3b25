"""HQ review of cross responses: the filtered list, one response's answers, bulk approval, the counting rule."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..extensions import db
from ..models import ReviewState, Source
from ..policy import Action, authorize
from ..services.assignments import campaign_assignments
from ..services.review import (
    ReviewError,
    ReviewFilter,
    approve_assignment,
    review_query,
    review_response,
    set_count_only_approved,
    state_counts,
    units_of,
)
from . import bp
from .common import acting_user, assignment_or_404, campaign_or_404, response_or_404
from .forms import REVIEW_LABELS, ApproveAssignmentForm, CountingForm, ReviewForm

PER_PAGE = 50


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 10 else None


@bp.route("/campaigns/<code>/review")
def review(code: str) -> str:
    """List the campaign's cross responses, filtered by assignment, unit, auditing unit and state."""
    campaign = campaign_or_404(code)
    authorize(Action.REVIEW_RESPONSES, campaign)
    units = units_of(campaign)
    by_code = {unit.code: unit for unit in units}
    state_arg = request.args.get("state", "")
    selected = ReviewFilter(
        assignment_id=_int_arg("assignment"),
        unit_id=by_code[request.args["unit"]].id if request.args.get("unit") in by_code else None,
        rater_unit_id=by_code[request.args["rater"]].id if request.args.get("rater") in by_code else None,
        state=ReviewState(state_arg) if state_arg in {s.value for s in ReviewState} else None,
    )
    page = db.paginate(review_query(campaign, selected), page=_int_arg("page") or 1, per_page=PER_PAGE, error_out=False)
    assignments = campaign_assignments(campaign)
    selected_assignment = next((a for a in assignments if a.id == selected.assignment_id), None)
    return render_template(
        "hq/review.html",
        campaign=campaign,
        page=page,
        units=units,
        assignments=assignments,
        selected=selected,
        selected_assignment=selected_assignment,
        counts=state_counts(campaign),
        labels=REVIEW_LABELS,
        counting_form=CountingForm(formdata=None, count_only_approved=campaign.count_only_approved),
        approve_form=ApproveAssignmentForm(formdata=None),
        args={k: v for k, v in request.args.items() if k != "page"},
    )


@bp.route("/campaigns/<code>/review/<int:response_id>", methods=["GET", "POST"])
def review_detail(code: str, response_id: int) -> Response | tuple[str, int]:
    """Show one cross response's answers and set its review state with a comment."""
    campaign = campaign_or_404(code)
    response = response_or_404(campaign, response_id)
    authorize(Action.REVIEW_RESPONSES, response)
    if response.source != Source.CROSS:
        abort(404)
    form = ReviewForm(data={"state": str(response.review_state), "comment": response.review_comment})
    status = 200
    if form.validate_on_submit():
        try:
            review_response(response, form.state.data, form.comment.data, acting_user())
        except ReviewError as exc:
            db.session.rollback()
            form.comment.errors = [str(exc)]
            status = 400
        else:
            flash(_("Review saved."), "success")
            back = request.args.get("back")
            return redirect(back if _is_local(back) else url_for("hq.review", code=campaign.code))
    elif form.is_submitted():
        status = 400
    return (
        render_template(
            "hq/review_detail.html",
            campaign=campaign,
            response=response,
            form=form,
            labels=REVIEW_LABELS,
            questionnaire=campaign.questionnaire,
        ),
        status,
    )


def _is_local(target: str | None) -> bool:
    """Only HQ paths are followed back after saving (no open redirect)."""
    return target is not None and target.startswith("/hq/") and "//" not in target and "\\" not in target


@bp.route("/campaigns/<code>/assignments/<int:assignment_id>/approve", methods=["POST"])
def approve(code: str, assignment_id: int) -> Response:
    """Approve every response of an assignment still in 'received'."""
    campaign = campaign_or_404(code)
    assignment = assignment_or_404(campaign, assignment_id)
    authorize(Action.REVIEW_RESPONSES, assignment)
    form = ApproveAssignmentForm()
    if not form.validate_on_submit():
        abort(400, description=_("The comment is too long; keep it under 2000 characters."))
    try:
        count = approve_assignment(assignment, acting_user(), form.comment.data)
    except ReviewError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(_("%(n)s responses approved.", n=count), "success")
    return redirect(url_for("hq.review", code=campaign.code, assignment=assignment.id))


@bp.route("/campaigns/<code>/review/settings", methods=["POST"])
def counting(code: str) -> Response:
    """Choose whether only approved cross responses count in scores."""
    campaign = campaign_or_404(code)
    authorize(Action.MANAGE_CAMPAIGNS, campaign)
    form = CountingForm()
    if not form.validate_on_submit():
        abort(400)
    set_count_only_approved(campaign, bool(form.count_only_approved.data), acting_user())
    flash(_("Counting rule saved."), "success")
    return redirect(url_for("hq.review", code=campaign.code))
