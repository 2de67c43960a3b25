"""The reconciliation page, its downloads and charts, the raw export, and the unit managers' page."""

from __future__ import annotations

import csv
import io
import re
import types

import pytest
import sqlalchemy as sa
from flask_login import login_user

from survey.extensions import db
from survey.models import AuditEvent, Response, Unit

from .conftest import login, stored_responses

REPORT = "/hq/campaigns/c2017/report"


def unit_order(html: str) -> list[str]:
    return re.findall(r'<tr data-unit="([^"]+)"', html)


def statuses(html: str) -> list[str]:
    return re.findall(r'<tr data-unit="[^"]+" data-status="([^"]+)"', html)


def export_events() -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "export").order_by(AuditEvent.id)))


# --------------------------------------------------------------------------- access


@pytest.mark.parametrize(
    "path",
    [REPORT, REPORT + ".csv", REPORT + ".xlsx", REPORT + ".pdf", "/hq/campaigns/c2017/charts/forest.svg",
     "/hq/campaigns/c2017/responses.csv"],
)
def test_hq_only(staff, seeded, app, path):
    assert app.test_client().get(path).status_code in (302, 401)
    for user in (staff.manager, staff.auditor):
        client = app.test_client()
        login(client, user.email)
        assert client.get(path).status_code == 403, (user.role, path)


def test_unknown_campaign_is_404(staff, seeded, login_as):
    client = login_as(staff.hq)
    assert client.get("/hq/campaigns/nope/report").status_code == 404
    assert client.get("/hq/campaigns/nope/report.csv").status_code == 404
    assert client.get("/hq/campaigns/c2017/charts/pie.svg").status_code == 404


# --------------------------------------------------------------------------- the page


def test_report_page_shows_table_raters_offset_target_and_previous(staff, seeded, login_as):
    client = login_as(staff.hq)
    response = client.get(REPORT)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert sorted(unit_order(html)) == sorted(u.code for u in seeded.units)
    assert "Công ty Điện lực Bắc Giang" in html
    assert "Độ dễ dãi của các đơn vị chấm chéo" in html  # raters table heading, in Vietnamese by default
    assert 'data-rater="bac-giang"' in html
    assert "c2016" in html and "7,50" in html
    for name in ("forest", "bland-altman", "leniency", "dimensions"):
        assert f'src="/hq/campaigns/c2017/charts/{name}.svg"' in html
    for fmt in ("csv", "xlsx", "pdf"):
        assert f'href="/hq/campaigns/c2017/report.{fmt}"' in html
    assert "<script" not in html and "style=" not in html
    # Default order is by rank.
    ranks = [int(r) for r in re.findall(r'<td class="num">(\d+)</td>\s*</tr>', html)]
    assert ranks == sorted(ranks)


def test_report_page_in_english(staff, seeded, login_as):
    client = login_as(staff.hq)
    html = client.get(REPORT + "?lang=en").get_data(as_text=True)
    assert "Leniency of the auditing units" in html and "Bac Giang Power Company" in html


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_sort_by_status_on_the_server(staff, seeded, login_as, direction):
    client = login_as(staff.hq)
    html = client.get(f"{REPORT}?sort=status&dir={direction}").get_data(as_text=True)
    order = {"inconsistent": 0, "inconclusive": 1, "consistent": 2}
    found = [order[s] for s in statuses(html)]
    assert found == sorted(found, reverse=direction == "desc") and len(found) == 6
    # The heading links to the opposite direction.
    opposite = "desc" if direction == "asc" else "asc"
    assert f"sort=status&amp;dir={opposite}" in html


def test_sort_by_consultant_score(staff, seeded, login_as):
    client = login_as(staff.hq)
    html = client.get(f"{REPORT}?sort=consultant_score&dir=desc").get_data(as_text=True)
    frame = stored_responses(seeded.campaign)
    means = frame[(frame["source"] == "consultant") & frame["index"].notna()].groupby("unit")["index"].mean()
    assert unit_order(html) == list(means.sort_values(ascending=False).index)


@pytest.mark.parametrize("query", ["sort=password", "sort=status&dir=sideways"])
def test_bad_sort_is_400(staff, seeded, login_as, query):
    client = login_as(staff.hq)
    response = client.get(f"{REPORT}?{query}")
    assert response.status_code == 400
    assert "<table" not in response.get_data(as_text=True)


# --------------------------------------------------------------------------- downloads and charts


@pytest.mark.parametrize(
    ("fmt", "media", "magic"),
    [("csv", "text/csv", b"\xef\xbb\xbfunit_code,"), ("xlsx", "application/vnd.openxmlformats", b"PK"),
     ("pdf", "application/pdf", b"%PDF")],
)
def test_downloads_are_attachments_and_audited(staff, seeded, login_as, fmt, media, magic):
    client = login_as(staff.hq)
    before = len(export_events())
    response = client.get(f"{REPORT}.{fmt}")
    assert response.status_code == 200
    assert response.mimetype.startswith(media.split(";")[0]) or response.content_type.startswith(media)
    assert response.data.startswith(magic)
    assert response.headers["Content-Disposition"] == f'attachment; filename="report-c2017.{fmt}"'
    events = export_events()
    assert len(events) == before + 1
    assert events[-1].after["export"] == fmt and events[-1].actor == "hq@example.vn"


def test_chart_endpoint_serves_svg_with_a_strict_policy(staff, seeded, login_as):
    client = login_as(staff.hq)
    response = client.get("/hq/campaigns/c2017/charts/leniency.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script" not in policy
    assert b"<script" not in response.data


# --------------------------------------------------------------------------- raw export


def reference_raw_csv(seeded, **filters) -> str:
    """The raw export built independently from the stored responses."""
    frame = stored_responses(seeded.campaign).sort_values("id")
    if "unit" in filters:
        frame = frame[frame["unit"] == filters["unit"]]
    if "source" in filters:
        frame = frame[frame["source"] == filters["source"]]
    if "review_state" in filters:
        frame = frame[frame["review_state"] == filters["review_state"]]
    items = [i.code for i in seeded.campaign.questionnaire.items]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["response_id", "unit_code", "source", "channel", "customer_group", "respondent_id",
                     "review_state", "respondent_index", *items])
    for row in frame.itertuples():
        index = "" if row.index != row.index else repr(float(row.index))
        answers = ["" if row.answers.get(c) is None else row.answers[c] for c in items]
        writer.writerow([row.id, row.unit, row.source, row.channel, row.customer_group, row.respondent_id,
                         row.review_state, index, *answers])
    return "\ufeff" + buffer.getvalue()


def call_raw_export(app, user, **filters):
    """Call the export view directly in a request, as a server would, and return its unconsumed response."""
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    context = app.test_request_context(f"/hq/campaigns/c2017/responses.csv?{query}")
    context.push()
    login_user(user)
    return context, app.view_functions["reports.raw_export"](code="c2017")


def test_raw_export_streams_everything(staff, seeded, app):
    context, response = call_raw_export(app, staff.hq)
    try:
        assert response.is_streamed and isinstance(response.response, types.GeneratorType)
        assert response.headers["Content-Disposition"] == 'attachment; filename="responses-c2017.csv"'
        chunks = list(response.response)
    finally:
        context.pop()
    assert len(chunks) >= 2  # the header, then batches
    body = b"".join(chunks).decode("utf-8")
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Response).where(
        Response.campaign_id == seeded.campaign.id))
    assert body.count("\r\n") == total + 1
    assert body == reference_raw_csv(seeded)


def test_raw_export_reads_in_batches_from_a_streaming_cursor(staff, seeded, app, monkeypatch, backend):
    """Rows come from the database as a stream and leave in chunks of a batch.

    SQLite: a cursor read RAW_BATCH rows at a time. PostgreSQL: ``COPY (SELECT …) TO STDOUT``,
    whose blocks are regrouped into chunks of RAW_BATCH lines.
    """
    from survey.exports import raw_csv
    from survey.services import reports

    monkeypatch.setattr(reports, "RAW_BATCH", 50)
    monkeypatch.setattr(raw_csv, "RAW_BATCH", 50)
    options = []
    copies = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        if "FROM response JOIN unit" in statement:
            options.append(dict(context.execution_options))

    def copy_blocks(*args):
        copies.append(args)
        yield from reports.raw_copy_blocks(*args)

    monkeypatch.setattr(raw_csv, "raw_copy_blocks", copy_blocks)
    sa.event.listen(db.engine, "before_cursor_execute", remember)
    context, response = call_raw_export(app, staff.hq)
    try:
        chunks = list(response.response)
    finally:
        context.pop()
        sa.event.remove(db.engine, "before_cursor_execute", remember)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Response).where(
        Response.campaign_id == seeded.campaign.id))
    assert len(chunks) == 1 + -(-total // 50)
    assert all(chunk.count(b"\r\n") == 50 for chunk in chunks[1:-1])
    if backend == "postgresql":
        assert len(copies) == 1 and options == []
    else:
        assert copies == []
        assert [o.get("yield_per") for o in options] == [50]
        assert options[0].get("stream_results") is True


def test_raw_export_audit_event_is_committed_before_streaming(staff, seeded, app):
    context, response = call_raw_export(app, staff.hq, source="cross")
    try:
        # Nothing has been read from the stream yet, and another connection already sees the event.
        with db.engine.connect() as connection:
            after = connection.execute(
                sa.select(AuditEvent.after).where(AuditEvent.action == "export").order_by(AuditEvent.id.desc())
            ).scalar()
        assert after == {"campaign": "c2017", "export": "raw-csv", "filters": {"source": "cross"}}
    finally:
        response.close()
        context.pop()


@pytest.mark.parametrize(
    "filters",
    [{"unit": "bac-kan"}, {"source": "cross"}, {"review_state": "rejected"},
     {"unit": "bac-giang", "source": "consultant"}],
)
def test_raw_export_respects_filters(staff, seeded, login_as, filters):
    client = login_as(staff.hq)
    response = client.get("/hq/campaigns/c2017/responses.csv", query_string=filters, buffered=True)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body == reference_raw_csv(seeded, **filters)
    assert body.count("\r\n") > 1
    event = export_events()[-1]
    assert event.after == {"campaign": "c2017", "export": "raw-csv", "filters": filters}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"unit": "atlantis"}, "atlantis"),
        ({"source": "rumour"}, "rumour"),
        ({"review_state": "maybe"}, "maybe"),
        ({"password": "x"}, "password"),
    ],
)
def test_raw_export_rejects_bad_filters(staff, seeded, login_as, query, message):
    client = login_as(staff.hq)
    before = len(export_events())
    response = client.get("/hq/campaigns/c2017/responses.csv", query_string=query)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert len(export_events()) == before


# --------------------------------------------------------------------------- unit managers


def test_manager_sees_own_unit_aggregates_only(staff, seeded, login_as):
    client = login_as(staff.manager)
    response = client.get("/unit/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/unit/bac-giang")
    html = client.get("/unit/bac-giang").get_data(as_text=True)
    assert "Công ty Điện lực Bắc Giang" in html
    assert "Cung cấp điện" in html  # a dimension title
    assert re.search(r'data-status="(inconsistent|consistent|inconclusive)"', html)
    assert re.search(r'data-value="rank">\d+ / 6|data-value="rank">\d+ trên 6', html)
    # No other unit and no respondent-level data.
    for unit in seeded.units[1:]:
        assert unit.name_vi not in html
    respondent_ids = stored_responses(seeded.campaign)["respondent_id"]
    assert not any(rid in html for rid in respondent_ids)


def test_manager_cannot_open_another_unit(staff, seeded, login_as):
    client = login_as(staff.manager)
    assert client.get("/unit/bac-kan").status_code == 403
    assert client.get("/unit/no-such-unit").status_code == 403
    assert client.get("/hq/campaigns/c2017/responses.csv?unit=bac-kan").status_code == 403


def test_manager_page_for_a_chosen_campaign(staff, seeded, login_as):
    client = login_as(staff.manager)
    assert client.get("/unit/bac-giang?campaign=c2016").status_code == 200
    assert client.get("/unit/bac-giang?campaign=nope").status_code == 404


def test_hq_sees_every_unit_and_auditors_none(staff, seeded, app, login_as):
    client = login_as(staff.hq)
    assert client.get("/unit/").status_code == 200
    assert client.get("/unit/bac-kan").status_code == 200
    assert client.get("/unit/no-such-unit").status_code == 404
    client = app.test_client()
    login(client, staff.auditor.email)
    assert client.get("/unit/").status_code == 403
    assert client.get("/unit/ha-giang").status_code == 403


def test_manager_page_without_campaigns(app, make_units, make_user, login_as):
    units = make_units(2)
    manager = make_user("m@example.vn", "manager", unit=units[0])
    client = login_as(manager)
    response = client.get("/unit/bac-giang")
    assert response.status_code == 200
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Unit)) == 2
