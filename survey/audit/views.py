"""Views of the auditor workspace. Each asks the policy, then calls one service function."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path
from typing import Any

from flask import Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError, generate_csrf
from werkzeug.exceptions import HTTPException

from .. import web
from ..extensions import db
from ..models import Assignment
from ..models import Response as InterviewRow
from ..policy import Action, authorize, can
from ..services import interviews
from ..services.assignments import AssignmentError, submit_assignment
from ..services.imports import ImportFileError
from ..services.progress import local_today
from . import bp
from .forms import UploadForm, initial_data, make_interview_form

#: Static files the service worker keeps for the entry page to open without a connection.
OFFLINE_STATIC = ("app.css", "audit/audit.css", "audit/outbox.js", "audit/entry.js")


#: Words for stored values, shown on the pages.
REVIEW_LABELS = {
    "received": _l("Received"),
    "has_issues": _l("Has issues"),
    "approved": _l("Approved"),
    "rejected": _l("Rejected"),
}
GROUP_LABELS = {"household": _l("Household"), "business": _l("Business")}


@bp.context_processor
def labels() -> dict[str, Any]:
    """Translated names of review states and customer groups for the templates."""
    return {"review_labels": REVIEW_LABELS, "group_labels": GROUP_LABELS}


def _locale() -> str:
    return str(get_locale() or "vi")


def _assignment(assignment_id: int, action: Action) -> Assignment:
    assignment = db.get_or_404(Assignment, assignment_id)
    authorize(action, assignment)
    return assignment


def _is_json_endpoint() -> bool:
    return request.path.endswith(".json")


@bp.get("/")
def workspace() -> str:
    """List the assignments of the auditor's unit with their progress."""
    authorize(Action.AUDIT_WORKSPACE)
    rows = interviews.unit_assignments(current_user.unit_id)
    return render_template("audit/workspace.html", rows=rows, today=local_today())


@bp.get("/assignments/<int:assignment_id>")
def assignment(assignment_id: int) -> str:
    """Show one assignment and its interviews."""
    assignment = _assignment(assignment_id, Action.VIEW_ASSIGNMENT)
    return render_template(
        "audit/assignment.html",
        progress=interviews.assignment_progress(assignment),
        rows=interviews.assignment_interviews(assignment),
        can_enter=can(current_user, Action.ENTER_INTERVIEWS, assignment),
        can_submit=can(current_user, Action.SUBMIT_ASSIGNMENT, assignment),
        today=local_today(),
    )


@bp.route("/assignments/<int:assignment_id>/interviews/new", methods=["GET", "POST"])
def new_interview(assignment_id: int) -> Response | str | tuple[str, int]:
    """Enter one interviewed customer's answers (the form also works offline through entry.js)."""
    assignment = _assignment(assignment_id, Action.ENTER_INTERVIEWS)
    form = make_interview_form(assignment.campaign.questionnaire, _locale())()
    if request.method == "POST":
        try:
            stored, created = interviews.record_interview(assignment, form.submission(), current_user)
        except interviews.InterviewError as exc:
            form.show_errors(exc.errors)
            return _entry_page(assignment, form), exc.status
        flash(_("Interview saved.") if created else _("This interview was already saved; nothing was added."),
              "success")
        return redirect(url_for("audit.new_interview", assignment_id=stored.assignment_id), code=303)
    form.interview_id.data = interviews.new_interview_id()
    return _entry_page(assignment, form)


def _entry_page(assignment: Assignment, form: Any) -> str:
    return render_template(
        "audit/entry.html", progress=interviews.assignment_progress(assignment), form=form, response=None
    )


@bp.route("/assignments/<int:assignment_id>/interviews/<int:response_id>/edit", methods=["GET", "POST"])
def edit_interview(assignment_id: int, response_id: int) -> Response | str | tuple[str, int]:
    """Change an interview's answers while the assignment is open."""
    assignment = _assignment(assignment_id, Action.ENTER_INTERVIEWS)
    response = interviews.assignment_interview(assignment, response_id)
    if response is None:
        abort(404)
    form_class = make_interview_form(assignment.campaign.questionnaire, _locale(), editing=True)
    form = form_class(data=initial_data(response) if request.method == "GET" else None)
    if request.method == "POST":
        try:
            interviews.update_interview(
                response, form.submission()["answers"], current_user,
                customer_group=request.form.get("customer_group", ""),
            )
        except interviews.InterviewError as exc:
            form.show_errors(exc.errors)
            return _edit_page(assignment, form, response), exc.status
        flash(_("Interview changed."), "success")
        return redirect(url_for("audit.assignment", assignment_id=assignment.id), code=303)
    return _edit_page(assignment, form, response)


def _edit_page(assignment: Assignment, form: Any, response: InterviewRow) -> str:
    return render_template(
        "audit/entry.html", progress=interviews.assignment_progress(assignment), form=form, response=response
    )


@bp.post("/assignments/<int:assignment_id>/interviews.json")
def interviews_json(assignment_id: int) -> tuple[Response, int]:
    """Store one interview sent by the device's queue: 201 new, 200 already stored, 4xx with per-field errors."""
    assignment = _assignment(assignment_id, Action.VIEW_ASSIGNMENT)
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return jsonify(errors={"body": _("Send the interview as a JSON object.")}), 400
    # A retry of an interview already stored only reads; anything new needs the right to enter.
    if interviews.stored_interview(assignment, payload.get("interview_id")) is None:
        authorize(Action.ENTER_INTERVIEWS, assignment)
    try:
        response, created = interviews.record_interview(assignment, payload, current_user)
    except interviews.InterviewError as exc:
        return jsonify(errors=exc.errors), exc.status
    progress = interviews.assignment_progress(assignment)
    body = {
        "status": "created" if created else "stored",
        "interview": {
            "id": response.id,
            "interview_id": response.idempotency_key,
            "respondent": response.respondent_id[:10],
            "customer_group": str(response.customer_group),
            "respondent_index": response.respondent_index,
            "review_state": str(response.review_state),
        },
        "progress": {"interviews": progress.interviews, "quota": assignment.quota},
    }
    return jsonify(body), 201 if created else 200


@bp.get("/csrf.json")
def csrf_json() -> Response:
    """A fresh CSRF token for the queue, whose cached page may carry an old one."""
    authorize(Action.AUDIT_WORKSPACE)
    response = jsonify(csrf_token=generate_csrf())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/assignments/<int:assignment_id>/submit", methods=["GET", "POST"])
def submit(assignment_id: int) -> Response | str:
    """Confirm, then submit the assignment, which locks it."""
    assignment = _assignment(assignment_id, Action.SUBMIT_ASSIGNMENT)
    if request.method == "POST":
        try:
            submit_assignment(assignment, current_user)
        except AssignmentError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Assignment submitted. Headquarters can reopen it if something must be changed."), "success")
        return redirect(url_for("audit.assignment", assignment_id=assignment.id), code=303)
    return render_template("audit/submit.html", progress=interviews.assignment_progress(assignment))


@bp.get("/assignments/<int:assignment_id>/template.csv")
def template_csv(assignment_id: int) -> Response:
    """The CSV template for paper interviews of this assignment (header row only)."""
    assignment = _assignment(assignment_id, Action.VIEW_ASSIGNMENT)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(interviews.template_header(assignment.campaign))
    filename = f"cross-{assignment.campaign.code}-{assignment.rater_unit.code}-{assignment.ratee_unit.code}.csv"
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@bp.route("/assignments/<int:assignment_id>/upload", methods=["GET", "POST"])
def upload(assignment_id: int) -> Response | str | tuple[str, int]:
    """Upload paper interviews as CSV: all rows are stored, or none, with every bad row listed."""
    assignment = _assignment(assignment_id, Action.ENTER_INTERVIEWS)
    form = UploadForm()
    problems: list[Any] = []
    if request.method == "POST":
        upload_file = request.files.get("file")
        if upload_file is None or not upload_file.filename:
            flash(_("Choose a CSV file to upload."), "error")
            return _upload_page(assignment, form, problems), 400
        try:
            result = interviews.import_paper_interviews(
                assignment, upload_file.stream, file_name=upload_file.filename, user=current_user
            )
        except ImportFileError as exc:
            return _upload_page(assignment, form, exc.problems, total=exc.total, bad_rows=exc.bad_rows), 422
        flash(_("%(rows)d interviews imported.", rows=result.rows), "success")
        return redirect(url_for("audit.assignment", assignment_id=assignment.id), code=303)
    return _upload_page(assignment, form, problems)


def _upload_page(
    assignment: Assignment, form: UploadForm, problems: list[Any], total: int = 0, bad_rows: int = 0
) -> str:
    return render_template(
        "audit/upload.html",
        progress=interviews.assignment_progress(assignment),
        form=form,
        problems=problems,
        problem_total=total or len(problems),
        bad_rows=bad_rows,
    )


@bp.get("/sw.js")
def service_worker() -> Response:
    """The service worker that keeps the entry page usable offline (no personal data in it)."""
    files = [url_for("static", filename=name) for name in OFFLINE_STATIC]
    version = hashlib.sha256()
    # The version changes with the files, so a device replaces its cached copies after a deploy.
    for name in OFFLINE_STATIC:
        version.update((Path(str(current_app.static_folder)) / name).read_bytes())
    body = render_template(
        "audit/sw.js", version=version.hexdigest()[:12], shell=files, offline_url=url_for("audit.offline")
    )
    response = Response(body, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/audit/"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/offline")
def offline() -> str:
    """What the service worker shows for an audit page that was never opened on this device."""
    return render_template("audit/offline.html")


@bp.after_request
def json_needs_login(response: Response) -> Response:
    """The queue's JSON calls get 401, not a redirect to the login page they would follow blindly."""
    if _is_json_endpoint() and response.status_code in (301, 302, 303) and "/login" in (response.location or ""):
        refused = jsonify(error=_("Your session has ended. Log in again; waiting interviews stay on this device."))
        refused.status_code = 401
        return refused
    return response


@bp.errorhandler(HTTPException)
def json_errors(error: HTTPException) -> tuple[Response | str, int]:
    """Errors of the JSON endpoints as JSON (the queue shows them); pages as usual."""
    if not _is_json_endpoint():
        return web.render_error(error)
    code = error.code or 500
    body: dict[str, Any] = {"error": str(web.ERROR_TITLES.get(code, error.name))}
    if isinstance(error, CSRFError):
        body["csrf"] = True
    return jsonify(body), code
