"""Paper interviews uploaded as CSV: all or nothing, every bad row listed, this assignment's pair only."""

from __future__ import annotations

import html as html_lib
import io
import re
import uuid

import sqlalchemy as sa
from audit_helpers import csrf_from, login, state

from survey.extensions import db
from survey.models import AuditEvent, Channel, Response, Source
from survey.services.responses import pseudonymise


def csv_file(world, rows: list[dict[str, str]]) -> bytes:
    header = ["rater_unit", "ratee_unit", "respondent_id", "customer_group", "interview_id", *world.item_codes]
    lines = [",".join(header)]
    for row in rows:
        lines.append(",".join(row.get(column, "") for column in header))
    return ("\n".join(lines) + "\n").encode("utf-8")


def row(world, rater, ratee, respondent, value="7", **cells) -> dict[str, str]:
    values = {code: value for code in world.item_codes}
    values.update(
        rater_unit=rater.code, ratee_unit=ratee.code, respondent_id=respondent, customer_group="household",
        interview_id="",
    )
    values.update(cells)
    return values


def upload(client, world, assignment, content: bytes, name: str = "paper.csv"):
    page = client.get(f"/audit/assignments/{assignment.id}/upload")
    assert page.status_code == 200
    return client.post(
        f"/audit/assignments/{assignment.id}/upload",
        data={"csrf_token": csrf_from(page.get_data(as_text=True)), "file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )


def listed_problems(page: str) -> list[tuple[str, str, str]]:
    """(line, column, why) rows of the problems table."""
    table = page.split('<table class="problems">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><td class=\"num\">(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", table, re.S)
    return [tuple(html_lib.unescape(cell) for cell in found) for found in rows]


def test_upload_page_explains_the_file(world, client):
    login(client, world.auditor_a.email)
    page = client.get(f"/audit/assignments/{world.a_scores_b.id}/upload").get_data(as_text=True)
    assert world.a.code in page and world.b.code in page
    assert f"/audit/assignments/{world.a_scores_b.id}/template.csv" in page
    for item in world.campaign.questionnaire.items:
        assert item.code in page


def test_good_file_imports_every_row(world, client):
    login(client, world.auditor_a.email)
    key = str(uuid.uuid4())
    content = csv_file(world, [
        row(world, world.a, world.b, "PB-0001"),
        row(world, world.a, world.b, "PB-0002", value="9", interview_id=key, customer_group="business"),
    ])
    response = upload(client, world, world.a_scores_b, content)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    stored = db.session.scalars(sa.select(Response).order_by(Response.id)).all()
    assert len(stored) == 2
    assert {r.respondent_id for r in stored} == {pseudonymise("PB-0001"), pseudonymise("PB-0002")}
    for r in stored:
        assert r.source == Source.CROSS and r.channel == Channel.IMPORT
        assert r.assignment_id == world.a_scores_b.id and r.unit_id == world.b.id and r.rater_unit_id == world.a.id
        assert r.created_by_id == world.auditor_a.id
    [second] = [r for r in stored if r.respondent_id == pseudonymise("PB-0002")]
    assert second.idempotency_key == key and second.respondent_index == 9.0
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "import")) == 1


def test_file_with_bad_rows_is_refused_whole_with_every_bad_row_listed(world, client):
    login(client, world.auditor_a.email)
    codes = world.item_codes
    content = csv_file(world, [
        row(world, world.a, world.b, "OK-1"),                                   # line 2: good
        row(world, world.a, world.b, "BAD-1", **{codes[0]: "11"}),              # line 3: off the scale
        row(world, world.a, world.b, "BAD-2", customer_group="government"),     # line 4: bad group
        row(world, world.b, world.c, "BAD-3"),                                  # line 5: another pair
        row(world, world.a, world.b, "OK-2"),                                   # line 6: good
        row(world, world.a, world.b, "BAD-4", interview_id="not-a-uuid"),       # line 7: bad UUID
    ])
    before = state()
    response = upload(client, world, world.a_scores_b, content)
    assert response.status_code == 422
    problems = listed_problems(response.get_data(as_text=True))
    lines = {line for line, _, _ in problems}
    assert lines == {"3", "4", "5", "7"}
    assert ("3", codes[0]) in {(line, column) for line, column, _ in problems}
    assert ("4", "customer_group") in {(line, column) for line, column, _ in problems}
    assert ("7", "interview_id") in {(line, column) for line, column, _ in problems}
    pair = f"{world.a.code} → {world.b.code}"
    other_pair = [why for line, _, why in problems if line == "5"]
    assert len(other_pair) == 1 and pair in other_pair[0]
    assert state() == before


def test_rows_of_another_pair_are_refused_even_when_that_pair_exists(world, client):
    """B → C is a real assignment of the campaign, but not this page's: an auditor of A cannot fill it."""
    login(client, world.auditor_a.email)
    content = csv_file(world, [
        row(world, world.b, world.c, "PC-1"),
        row(world, world.c, world.a, "PA-1"),
    ])
    before = state()
    response = upload(client, world, world.a_scores_b, content)
    assert response.status_code == 422
    problems = listed_problems(response.get_data(as_text=True))
    assert {(line, column) for line, column, _ in problems} == {("2", "rater_unit"), ("3", "rater_unit")}
    assert all(f"{world.a.code} → {world.b.code}" in why for _, _, why in problems)
    assert state() == before


def test_upload_without_a_file_or_with_garbage_changes_nothing(world, client):
    login(client, world.auditor_a.email)
    page = client.get(f"/audit/assignments/{world.a_scores_b.id}/upload").get_data(as_text=True)
    before = state()
    empty = client.post(f"/audit/assignments/{world.a_scores_b.id}/upload",
                        data={"csrf_token": csrf_from(page)}, content_type="multipart/form-data")
    assert empty.status_code == 400
    garbage = upload(client, world, world.a_scores_b, b"\xff\xfe\x00g\x00a\x00r\x00b")
    assert garbage.status_code == 422
    assert "problems" in garbage.get_data(as_text=True)
    assert state() == before
