"""Entering, re-sending, editing and submitting interviews in the auditor workspace."""

from __future__ import annotations

import re
import threading
import uuid

import pytest
import sqlalchemy as sa
from audit_helpers import answers, csrf_from, form_fields, interview, login, meta_csrf, state, submit_directly

from survey.extensions import db
from survey.models import (
    Assignment,
    AssignmentStatus,
    AuditEvent,
    Channel,
    CustomerGroup,
    Response,
    ReviewState,
    Source,
)
from survey.services.responses import pseudonymise


def expected_index(world, chosen: dict[str, int | None]) -> float | None:
    """DESIGN.md's rule, computed here independently: mean of dimension means; None below half the dimensions."""
    means = []
    for dimension in world.campaign.questionnaire.dimensions:
        values = [chosen[item.code] for item in dimension.items if chosen[item.code] is not None]
        if values:
            means.append(sum(values) / len(values))
    if len(means) < len(world.campaign.questionnaire.dimensions) / 2:
        return None
    return sum(means) / len(means)


def json_url(assignment) -> str:
    return f"/audit/assignments/{assignment.id}/interviews.json"


def count_responses() -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count(Response.id)))


def mixed_answers(world) -> dict[str, int | None]:
    codes = world.item_codes
    chosen = {code: (i % 10) + 1 for i, code in enumerate(codes)}
    chosen[codes[1]] = None  # not applicable
    return chosen


def test_entry_form_has_every_item_and_a_server_made_uuid(world, client):
    login(client, world.auditor_a.email)
    page = client.get(f"/audit/assignments/{world.a_scores_b.id}/interviews/new")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for code in world.item_codes:
        assert len(re.findall(rf'name="{code}"', html)) == 11  # 1–10 and "not applicable"
    match = re.search(r'name="interview_id" type="hidden" value="([0-9a-f-]{36})"', html) or re.search(
        r'name="interview_id"[^>]*value="([0-9a-f-]{36})"', html
    )
    assert match and uuid.UUID(match.group(1)).version == 4
    assert '<meta name="csrf-token"' in html
    for dimension in world.campaign.questionnaire.dimensions:
        assert dimension.title_vi in html
    assert "<script>" not in html and " style=" not in html  # the CSP allows neither


def test_html_form_stores_a_cross_interview(world, client):
    login(client, world.auditor_a.email)
    html = client.get(f"/audit/assignments/{world.a_scores_b.id}/interviews/new").get_data(as_text=True)
    payload = interview(world, respondent="PA01HH0012345", group="business")
    payload["answers"] = mixed_answers(world)
    response = client.post(
        f"/audit/assignments/{world.a_scores_b.id}/interviews/new", data=form_fields(world, payload, csrf_from(html))
    )
    assert response.status_code == 303
    row = db.session.scalars(sa.select(Response)).one()
    assert row.source == Source.CROSS and row.channel == Channel.INTERVIEW
    assert row.unit_id == world.b.id and row.rater_unit_id == world.a.id
    assert row.assignment_id == world.a_scores_b.id and row.campaign_id == world.campaign.id
    assert row.created_by_id == world.auditor_a.id
    assert row.review_state == ReviewState.RECEIVED
    assert row.customer_group == CustomerGroup.BUSINESS
    assert row.idempotency_key == payload["interview_id"]
    assert row.respondent_id == pseudonymise("PA01HH0012345") != "PA01HH0012345"
    assert row.answers == payload["answers"]
    assert row.respondent_index == pytest.approx(expected_index(world, payload["answers"]))
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.entity == "response")).one()
    assert event.action == "create" and event.actor_id == world.auditor_a.id and event.entity_id == str(row.id)


def test_html_form_sent_twice_stores_once(world, client):
    """Without JavaScript the form's server-made UUID is the key: pressing Save twice stores one interview."""
    login(client, world.auditor_a.email)
    html = client.get(f"/audit/assignments/{world.a_scores_b.id}/interviews/new").get_data(as_text=True)
    server_uuid = re.search(r'name="interview_id"[^>]*value="([0-9a-f-]{36})"', html).group(1)
    fields = form_fields(world, interview(world), csrf_from(html))
    fields["interview_id"] = server_uuid
    url = f"/audit/assignments/{world.a_scores_b.id}/interviews/new"
    assert client.post(url, data=fields).status_code == 303
    again = client.post(url, data=fields, follow_redirects=True)
    assert again.status_code == 200
    assert count_responses() == 1
    assert db.session.scalars(sa.select(Response)).one().idempotency_key == server_uuid
    # The next empty form carries a new UUID.
    assert server_uuid not in again.get_data(as_text=True)


def test_html_form_with_missing_and_bad_answers_is_refused_with_reasons(world, client):
    login(client, world.auditor_a.email)
    html = client.get(f"/audit/assignments/{world.a_scores_b.id}/interviews/new").get_data(as_text=True)
    codes = world.item_codes
    fields = form_fields(world, interview(world, respondent=""), csrf_from(html))
    del fields[codes[0]]
    fields[codes[2]] = "11"
    fields["customer_group"] = "government"
    before = state()
    response = client.post(f"/audit/assignments/{world.a_scores_b.id}/interviews/new", data=fields)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="error-summary"' in page
    for anchor in (codes[0], codes[2], "customer_group", "respondent_id"):
        assert f'href="#{anchor}' in page
    assert state() == before


def test_json_same_uuid_ten_times_leaves_one_row(world, client):
    login(client, world.auditor_a.email)
    csrf = meta_csrf(client.get("/audit/").get_data(as_text=True))
    payload = interview(world)
    statuses = []
    for _ in range(10):
        response = client.post(json_url(world.a_scores_b), json=payload, headers={"X-CSRFToken": csrf})
        statuses.append(response.status_code)
        assert response.get_json()["interview"]["interview_id"] == payload["interview_id"]
    assert statuses == [201] + [200] * 9
    assert count_responses() == 1
    creates = db.session.scalar(
        sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.entity == "response", AuditEvent.action == "create")
    )
    assert creates == 1


def test_json_retry_with_changed_payload_keeps_the_stored_interview(world, client):
    """A retried send is the same interview: the stored one is shown, not overwritten."""
    login(client, world.auditor_a.email)
    csrf = meta_csrf(client.get("/audit/").get_data(as_text=True))
    payload = interview(world, value=9)
    assert client.post(json_url(world.a_scores_b), json=payload, headers={"X-CSRFToken": csrf}).status_code == 201
    payload["answers"] = answers(world, value=2)
    again = client.post(json_url(world.a_scores_b), json=payload, headers={"X-CSRFToken": csrf})
    assert again.status_code == 200 and again.get_json()["status"] == "stored"
    assert db.session.scalars(sa.select(Response)).one().respondent_index == pytest.approx(9.0)


def test_json_errors_are_per_field(world, client):
    login(client, world.auditor_a.email)
    csrf = meta_csrf(client.get("/audit/").get_data(as_text=True))
    payload = interview(world)
    codes = world.item_codes
    payload["answers"][codes[0]] = 0
    payload["answers"][codes[1]] = "seven"
    payload["answers"]["made_up"] = 5
    del payload["answers"][codes[3]]
    payload["interview_id"] = "not-a-uuid"
    response = client.post(json_url(world.a_scores_b), json=payload, headers={"X-CSRFToken": csrf})
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert set(errors) == {codes[0], codes[1], codes[3], "made_up", "interview_id"}
    assert all(isinstance(message, str) and message for message in errors.values())
    assert count_responses() == 0


def test_json_body_must_be_an_object_and_carry_the_csrf_header(world, client):
    login(client, world.auditor_a.email)
    csrf = meta_csrf(client.get("/audit/").get_data(as_text=True))
    bad = client.post(json_url(world.a_scores_b), data="[1, 2]", content_type="application/json",
                      headers={"X-CSRFToken": csrf})
    assert bad.status_code == 400 and "body" in bad.get_json()["errors"]
    no_token = client.post(json_url(world.a_scores_b), json=interview(world))
    assert no_token.status_code == 400 and no_token.get_json()["csrf"] is True
    fresh = client.get("/audit/csrf.json").get_json()["csrf_token"]
    assert client.post(json_url(world.a_scores_b), json=interview(world), headers={"X-CSRFToken": fresh}).status_code \
        == 201


def test_the_same_customer_twice_is_a_conflict_on_the_account_number(world, client):
    login(client, world.auditor_a.email)
    csrf = meta_csrf(client.get("/audit/").get_data(as_text=True))
    first = client.post(json_url(world.a_scores_b), json=interview(world, respondent="PA9"),
                        headers={"X-CSRFToken": csrf})
    assert first.status_code == 201
    second = client.post(json_url(world.a_scores_b), json=interview(world, respondent=" PA9 "),
                         headers={"X-CSRFToken": csrf})
    assert second.status_code == 409 and set(second.get_json()["errors"]) == {"respondent_id"}
    assert count_responses() == 1


def test_edit_recomputes_the_index_and_audits_before_and_after(world, client):
    login(client, world.auditor_a.email)
    csrf = meta_csrf(client.get("/audit/").get_data(as_text=True))
    payload = interview(world, value=8)
    client.post(json_url(world.a_scores_b), json=payload, headers={"X-CSRFToken": csrf})
    row = db.session.scalars(sa.select(Response)).one()
    row.review_state = ReviewState.APPROVED  # reviewed meanwhile; an edit needs a new review
    db.session.commit()
    path = f"/audit/assignments/{world.a_scores_b.id}/interviews/{row.id}/edit"
    page = client.get(path).get_data(as_text=True)
    first = world.item_codes[0]
    assert re.search(rf'<input checked id="{first}-\d+" name="{first}" type="radio" value="8">', page)
    assert 'value="household"' in page and re.search(r'<input checked [^>]*value="household">', page)

    changed = answers(world, value=8)
    changed[world.item_codes[0]] = 2
    changed[world.item_codes[5]] = None
    fields = {"csrf_token": csrf_from(page), "customer_group": "business"}
    fields.update({code: "na" if value is None else str(value) for code, value in changed.items()})
    assert client.post(path, data=fields).status_code == 303

    db.session.expire_all()
    row = db.session.get(Response, row.id)
    assert row.answers == changed
    assert row.respondent_index == pytest.approx(expected_index(world, changed))
    assert row.customer_group == CustomerGroup.BUSINESS
    assert row.review_state == ReviewState.RECEIVED
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "update")).one()
    assert event.before["answers"][world.item_codes[0]] == 8 and event.before["review_state"] == "approved"
    assert event.after["answers"][world.item_codes[0]] == 2 and event.after["customer_group"] == "business"
    assert event.after["respondent_index"] == pytest.approx(row.respondent_index)


def test_edit_with_a_bad_answer_changes_nothing(world, client):
    login(client, world.auditor_a.email)
    csrf = meta_csrf(client.get("/audit/").get_data(as_text=True))
    client.post(json_url(world.a_scores_b), json=interview(world), headers={"X-CSRFToken": csrf})
    row = db.session.scalars(sa.select(Response)).one()
    fields = {"csrf_token": csrf, "customer_group": "household"}
    fields.update({code: "7" for code in world.item_codes})
    fields[world.item_codes[4]] = "99"
    before = state()
    response = client.post(f"/audit/assignments/{world.a_scores_b.id}/interviews/{row.id}/edit", data=fields)
    assert response.status_code == 422
    assert state() == before


def test_assignment_page_lists_interviews_and_progress(world, client):
    login(client, world.auditor_a.email)
    csrf = meta_csrf(client.get("/audit/").get_data(as_text=True))
    for respondent in ("R1", "R2"):
        client.post(json_url(world.a_scores_b), json=interview(world, respondent=respondent),
                    headers={"X-CSRFToken": csrf})
    page = client.get(f"/audit/assignments/{world.a_scores_b.id}").get_data(as_text=True)
    assert "2 / 3" in page or "2 trên 3" in page or "2 of 3" in page
    assert '<progress max="3" value="2"' in page
    for respondent in ("R1", "R2"):
        assert pseudonymise(respondent)[:10] in page
    assert page.count("/edit") == 2
    listing = client.get("/audit/").get_data(as_text=True)
    assert '<progress max="3" value="2"' in listing


def test_submit_asks_for_confirmation_then_locks(world, client):
    login(client, world.auditor_a.email)
    confirm = client.get(f"/audit/assignments/{world.a_scores_b.id}/submit")
    assert confirm.status_code == 200
    assert db.session.get(Assignment, world.a_scores_b.id).status == AssignmentStatus.OPEN
    response = client.post(f"/audit/assignments/{world.a_scores_b.id}/submit",
                           data={"csrf_token": csrf_from(confirm.get_data(as_text=True))})
    assert response.status_code == 303
    db.session.expire_all()
    assignment = db.session.get(Assignment, world.a_scores_b.id)
    assert assignment.status == AssignmentStatus.SUBMITTED and assignment.submitted_at is not None
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "submit")).one()
    assert event.entity_id == str(assignment.id) and event.actor_id == world.auditor_a.id


def test_a_stored_uuid_is_confirmed_even_after_the_assignment_is_submitted(world, client):
    """The device may resend an interview whose answer it never received; it must not stay in the queue."""
    login(client, world.auditor_a.email)
    csrf = meta_csrf(client.get("/audit/").get_data(as_text=True))
    payload = interview(world)
    assert client.post(json_url(world.a_scores_b), json=payload, headers={"X-CSRFToken": csrf}).status_code == 201
    submit_directly(world.a_scores_b)
    again = client.post(json_url(world.a_scores_b), json=payload, headers={"X-CSRFToken": csrf})
    assert again.status_code == 200
    fresh = client.post(json_url(world.a_scores_b), json=interview(world, respondent="NEW"),
                        headers={"X-CSRFToken": csrf})
    assert fresh.status_code == 403
    assert count_responses() == 1


def test_service_worker_and_offline_page(world, client):
    worker = client.get("/audit/sw.js")
    assert worker.status_code == 200
    assert worker.headers["Service-Worker-Allowed"] == "/audit/"
    assert worker.mimetype == "text/javascript"
    body = worker.get_data(as_text=True)
    for path in ("/static/app.css", "/static/audit/outbox.js", "/static/audit/entry.js", "/audit/offline"):
        assert f'"{path}"' in body
    assert client.get("/audit/offline").status_code == 200
    for name in ("outbox.js", "entry.js", "audit.css"):
        with client.get(f"/static/audit/{name}") as static:
            assert static.status_code == 200


def test_template_csv_header(world, client):
    login(client, world.auditor_a.email)
    response = client.get(f"/audit/assignments/{world.a_scores_b.id}/template.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    lines = response.get_data(as_text=True).splitlines()
    assert lines == [",".join(["rater_unit", "ratee_unit", "respondent_id", "customer_group", "interview_id",
                               *world.item_codes])]


@pytest.mark.postgresql_only
def test_same_uuid_sent_concurrently_leaves_one_row(world, client, app, backend):
    if backend != "postgresql":
        pytest.skip("concurrent sends need PostgreSQL's row locks; SQLite serialises the whole file")
    login(client, world.auditor_a.email)
    csrf = meta_csrf(client.get("/audit/").get_data(as_text=True))
    cookie = client.get_cookie("session")
    payload = interview(world)
    url = json_url(world.a_scores_b)
    barrier = threading.Barrier(10)
    statuses: list[int] = []
    failures: list[BaseException] = []

    def send() -> None:
        try:
            device = app.test_client()
            device.set_cookie("session", cookie.value, domain=cookie.domain or "localhost")
            barrier.wait(timeout=20)
            response = device.post(url, json=payload, headers={"X-CSRFToken": csrf})
            statuses.append(response.status_code)
        except BaseException as exc:  # noqa: BLE001  (reported below, in the test's thread)
            failures.append(exc)

    threads = [threading.Thread(target=send) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    assert sorted(statuses) == [200] * 9 + [201]
    assert count_responses() == 1
    creates = db.session.scalar(
        sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.entity == "response", AuditEvent.action == "create")
    )
    assert creates == 1
