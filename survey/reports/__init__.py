"""HQ's reconciled report of a campaign: the page, its charts, the CSV/XLSX/PDF downloads and the raw export."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request, stream_with_context
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from .. import charts, exports
from ..exports.raw_csv import raw_csv_chunks
from ..models import Campaign, ReviewState
from ..policy import Action, authorize
from ..services import reports

bp = Blueprint("reports", __name__, url_prefix="/hq/campaigns")

#: Columns a person can sort the page by (any DESIGN.md column works in the URL).
SORTABLE = reports.REPORT_COLUMNS
#: Review states as people read them, by stored value.
REVIEW_STATE_LABELS = {
    ReviewState.RECEIVED.value: _l("Received"),
    ReviewState.HAS_ISSUES.value: _l("Has issues"),
    ReviewState.APPROVED.value: _l("Approved"),
    ReviewState.REJECTED.value: _l("Rejected"),
}
#: Charts are images from our own server: they may style themselves, but never run scripts.
CHART_POLICY = "default-src 'none'; style-src 'unsafe-inline'"


def _lang() -> str:
    return "en" if str(get_locale() or "vi") == "en" else "vi"


def _campaign(code: str) -> Campaign:
    campaign = reports.find_campaign(code)
    if campaign is None:
        abort(404, description=_("There is no campaign with the code “%(code)s”.", code=code[:40]))
    return campaign


def _download(data: bytes, fmt: str, name: str) -> Response:
    response = Response(data, mimetype=exports.MEDIA_TYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<code>/report")
def page(code: str) -> str:
    """Show the reconciliation of a campaign, sorted as asked (``?sort=<column>&dir=asc|desc``)."""
    authorize(Action.HQ_PAGES)
    campaign = _campaign(code)
    sort = request.args.get("sort", "rank")
    direction = request.args.get("dir", "asc")
    if direction not in ("asc", "desc"):
        abort(400, description=_("The sort direction must be “asc” or “desc”."))
    if sort not in SORTABLE:
        abort(400, description=_("The table cannot be sorted by “%(column)s”. Use the links in the column headings.",
                                 column=sort[:40]))
    report = reports.build_report(campaign)
    lang = _lang()
    rows = reports.sort_rows(report.unit_rows(lang), sort, direction == "desc")
    return render_template(
        "reports/report.html",
        campaign=campaign,
        report=report,
        rows=rows,
        raters=report.rater_rows(),
        sort=sort,
        direction=direction,
        lang=lang,
        number=exports.number,
        p_value=exports.p_value,
        status_labels=exports.STATUS_LABELS,
        short_name=charts.short_name,
        chart_names=list(charts.CHARTS),
        units=sorted(report.units, key=lambda u: u.code),
        unit_codes={u.code for u in report.units},
        review_states=REVIEW_STATE_LABELS,
    )


@bp.get("/<code>/report.<any(csv, xlsx, pdf):fmt>")
def download(code: str, fmt: str) -> Response:
    """Download the report as CSV, XLSX or PDF, in the page's language; the export is audited."""
    authorize(Action.HQ_PAGES)
    campaign = _campaign(code)
    lang = _lang()
    data = exports.write_report(reports.build_report(campaign), fmt, lang)
    reports.record_export(campaign, fmt, {"lang": lang}, user=current_user)
    return _download(data, fmt, exports.filename(campaign.code, fmt))


@bp.get("/<code>/charts/<name>.svg")
def chart(code: str, name: str) -> Response:
    """One chart of the report as SVG."""
    authorize(Action.HQ_PAGES)
    campaign = _campaign(code)
    if name not in charts.CHARTS:
        abort(404, description=_("There is no chart called “%(name)s”.", name=name[:40]))
    svg = charts.chart(reports.build_report(campaign), name, _lang(), "svg")
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = CHART_POLICY
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/<code>/responses.csv")
def raw_export(code: str) -> Response:
    """Stream the campaign's responses as CSV, filtered by unit, source and review state (HQ analysts only)."""
    authorize(Action.EXPORT_RAW)
    campaign = _campaign(code)
    try:
        filters = reports.parse_raw_filters(request.args, allowed_extra=("lang",))
    except reports.ReportError as error:
        abort(400, description=str(error))
    # The audit event is committed before the first byte leaves.
    reports.record_export(campaign, "raw-csv", {"filters": filters.as_dict()}, user=current_user)
    response = Response(stream_with_context(raw_csv_chunks(campaign, filters)), mimetype=exports.MEDIA_TYPES["csv"])
    name = exports.filename(campaign.code, "csv").replace("report-", "responses-", 1)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response

