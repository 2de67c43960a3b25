"""HQ: uploading the consultant's (or cross-scoring) interview file, all or nothing, with every bad row listed."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage

from ..models import Campaign, Source
from ..policy import Action, authorize
from ..services.imports import ImportFileError, import_consultant, import_cross
from . import bp
from .common import acting_user, campaign_or_404
from .forms import ImportForm


def _page(campaign: Campaign, form: ImportForm, error: ImportFileError | None, status: int) -> tuple[str, int]:
    return (
        render_template(
            "hq/import.html",
            campaign=campaign,
            form=form,
            problems=error.problems if error else [],
            problem_total=error.total if error else 0,
            bad_rows=error.bad_rows if error else 0,
            item_codes=[item.code for item in campaign.questionnaire.items],
        ),
        status,
    )


@bp.route("/campaigns/<code>/import", methods=["GET", "POST"])
def import_file(code: str) -> Response | tuple[str, int]:
    """Import a CSV of interviews: every row is stored, or none, and every bad row is shown with its line and column."""
    campaign = campaign_or_404(code)
    authorize(Action.MANAGE_CAMPAIGNS, campaign)
    form = ImportForm()
    if not form.is_submitted():
        return _page(campaign, form, None, 200)
    if not form.validate():
        return _page(campaign, form, None, 400)
    upload: Any = request.files.get("file")
    if not isinstance(upload, FileStorage) or not upload.filename:
        form.file.errors = [_("Choose a CSV file to upload.")]
        return _page(campaign, form, None, 400)
    importer = import_consultant if form.kind.data == Source.CONSULTANT.value else import_cross
    user = acting_user()
    try:
        # The importer reads the upload's stream (on disk, or in memory when small) once for a good file;
        # a file with problems is read again to list every one of them.
        result = importer(campaign, upload.stream, user=user, actor=user.email, file_name=upload.filename)
    except ImportFileError as exc:
        return _page(campaign, form, exc, 422)
    flash(
        _("%(rows)s responses imported from %(file)s (%(incomplete)s incomplete, without an index).",
          rows=result.rows, file=result.file_name, incomplete=result.incomplete),
        "success",
    )
    return redirect(url_for("hq.progress", code=campaign.code), code=303)
