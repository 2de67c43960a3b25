"""An auditor works only on their own unit's assignments, never scores their own unit, and a refused
request changes nothing: no row, no answer, no status, no audit event."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from audit_helpers import csrf_from, form_fields, interview, login, meta_csrf, state, submit_directly
from sqlalchemy.exc import IntegrityError

from survey.extensions import db
from survey.models import Assignment, AssignmentStatus, Response
from survey.policy import Action, can
from survey.services import interviews


def _store(world, assignment, user, respondent="PB0000001"):
    """An interview stored through the service (set-up for edit attempts)."""
    response, created = interviews.record_interview(assignment, interview(world, respondent=respondent), user)
    assert created
    return response


def _paths(assignment_id: int, response_id: int) -> dict[str, str]:
    base = f"/audit/assignments/{assignment_id}"
    return {
        "assignment": base,
        "new": f"{base}/interviews/new",
        "edit": f"{base}/interviews/{response_id}/edit",
        "json": f"{base}/interviews.json",
        "submit": f"{base}/submit",
        "template": f"{base}/template.csv",
        "upload": f"{base}/upload",
    }


def test_workspace_lists_only_own_units_assignments(world, client):
    login(client, world.auditor_a.email)
    page = client.get("/audit/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'data-assignment-id="{world.a_scores_b.id}"' in html
    assert f'data-assignment-id="{world.b_scores_c.id}"' not in html
    assert f'data-assignment-id="{world.c_scores_a.id}"' not in html
    assert world.b.name_vi in html


@pytest.mark.parametrize("page", ["assignment", "new", "edit", "submit", "template", "upload"])
def test_other_units_assignment_pages_are_refused(world, client, page):
    other = _store(world, world.b_scores_c, world.auditor_b)
    login(client, world.auditor_a.email)
    before = state()
    response = client.get(_paths(world.b_scores_c.id, other.id)[page])
    assert response.status_code in (403, 404)
    assert world.c.name_vi not in response.get_data(as_text=True)
    assert state() == before


@pytest.mark.parametrize("target", ["b_scores_c", "c_scores_a"])
def test_forged_posts_to_other_units_assignments_change_nothing(world, client, target):
    """Posting to B's assignment, or to the assignment that scores A itself, by every route."""
    assignment = getattr(world, target)
    rater_user = world.auditor_b if target == "b_scores_c" else None
    other = _store(world, assignment, rater_user) if rater_user else None
    login(client, world.auditor_a.email)
    own_page = client.get(f"/audit/assignments/{world.a_scores_b.id}/interviews/new").get_data(as_text=True)
    csrf = meta_csrf(own_page)
    paths = _paths(assignment.id, other.id if other else 999999)
    payload = interview(world)
    before = state()

    attempts = [
        client.post(paths["new"], data=form_fields(world, payload, csrf)),
        client.post(paths["json"], json=payload, headers={"X-CSRFToken": csrf}),
        client.post(paths["edit"], data=form_fields(world, interview(world, value=1), csrf)),
        client.post(paths["submit"], data={"csrf_token": csrf}),
        client.post(
            paths["upload"],
            data={"csrf_token": csrf, "file": (io.BytesIO(b"rater_unit,ratee_unit\n"), "paper.csv")},
            content_type="multipart/form-data",
        ),
    ]
    for response in attempts:
        assert response.status_code in (403, 404), (response.request.path, response.status_code)
    assert state() == before


def test_forged_assignment_and_unit_fields_are_refused(world, client):
    """Extra fields naming another assignment or unit (here A itself) are refused, not followed."""
    login(client, world.auditor_a.email)
    page = client.get(f"/audit/assignments/{world.a_scores_b.id}/interviews/new").get_data(as_text=True)
    csrf = meta_csrf(page)
    before = state()

    fields = form_fields(world, interview(world), csrf)
    fields.update({"unit_id": str(world.a.id), "assignment_id": str(world.c_scores_a.id), "rater_unit_id": "3"})
    response = client.post(f"/audit/assignments/{world.a_scores_b.id}/interviews/new", data=fields)
    assert response.status_code == 422
    assert state() == before

    payload = interview(world)
    payload.update({"unit_id": world.a.id, "assignment": world.c_scores_a.id, "ratee_unit": world.a.code})
    response = client.post(
        f"/audit/assignments/{world.a_scores_b.id}/interviews.json", json=payload, headers={"X-CSRFToken": csrf}
    )
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"unit_id", "assignment", "ratee_unit"}
    assert state() == before


def test_posts_to_a_submitted_assignment_change_nothing(world, client):
    login(client, world.auditor_a.email)
    csrf = meta_csrf(client.get("/audit/").get_data(as_text=True))
    stored = _store(world, world.a_scores_b, world.auditor_a)
    submit_directly(world.a_scores_b)
    paths = _paths(world.a_scores_b.id, stored.id)
    before = state()

    attempts = [
        client.post(paths["new"], data=form_fields(world, interview(world, respondent="X2"), csrf)),
        client.post(paths["json"], json=interview(world, respondent="X3"), headers={"X-CSRFToken": csrf}),
        client.post(paths["edit"], data=form_fields(world, interview(world, value=2), csrf)),
        client.post(paths["submit"], data={"csrf_token": csrf}),
        client.post(
            paths["upload"],
            data={"csrf_token": csrf, "file": (io.BytesIO(b"x\n"), "paper.csv")},
            content_type="multipart/form-data",
        ),
        client.get(paths["new"]),
        client.get(paths["edit"]),
    ]
    for response in attempts:
        assert response.status_code == 403, (response.request.path, response.status_code)
    assert state() == before
    # The assignment itself stays readable, without the entry buttons.
    page = client.get(paths["assignment"]).get_data(as_text=True)
    assert 'id="new-interview"' not in page and 'id="submit-assignment"' not in page


def test_an_interview_of_another_assignment_cannot_be_edited_through_ones_own(world, client):
    other = _store(world, world.b_scores_c, world.auditor_b)
    login(client, world.auditor_a.email)
    csrf = meta_csrf(client.get("/audit/").get_data(as_text=True))
    before = state()
    path = f"/audit/assignments/{world.a_scores_b.id}/interviews/{other.id}/edit"
    assert client.get(path).status_code == 404
    assert client.post(path, data=form_fields(world, interview(world, value=1), csrf)).status_code == 404
    assert state() == before


def test_unknown_assignment_is_404(world, client):
    login(client, world.auditor_a.email)
    assert client.get("/audit/assignments/987654").status_code == 404


def test_anonymous_json_gets_401_and_pages_redirect_to_login(world, client):
    response = client.post(f"/audit/assignments/{world.a_scores_b.id}/interviews.json", json=interview(world))
    # No session: CSRF fails first (400) or the login is asked for (401); never stored, never a redirect.
    assert response.status_code in (400, 401)
    assert response.is_json
    assert client.get("/audit/csrf.json").status_code == 401
    page = client.get(f"/audit/assignments/{world.a_scores_b.id}")
    assert page.status_code == 302 and "/login" in page.location
    assert db.session.scalar(sa.select(sa.func.count(Response.id))) == 0


def test_hq_reads_an_assignment_but_cannot_enter_interviews(world, client):
    login(client, world.hq.email)
    page = client.get(f"/audit/assignments/{world.a_scores_b.id}")
    assert page.status_code == 200
    csrf = meta_csrf(page.get_data(as_text=True))
    before = state()
    response = client.post(f"/audit/assignments/{world.a_scores_b.id}/interviews.json", json=interview(world),
                           headers={"X-CSRFToken": csrf})
    assert response.status_code == 403 and response.is_json
    assert client.get(f"/audit/assignments/{world.a_scores_b.id}/interviews/new").status_code == 403
    assert client.get("/audit/").status_code == 403
    assert state() == before


def test_a_manager_has_no_access_to_the_workspace(world, client):
    login(client, world.manager_a.email)
    refused = client.get("/audit/")
    assert refused.status_code == 403
    csrf = csrf_from(refused.get_data(as_text=True))  # the logout form of the error page
    before = state()
    for assignment in (world.a_scores_b, world.c_scores_a):
        assert client.get(f"/audit/assignments/{assignment.id}").status_code == 403
        response = client.post(f"/audit/assignments/{assignment.id}/interviews.json", json=interview(world),
                               headers={"X-CSRFToken": csrf})
        assert response.status_code == 403
    assert state() == before


def test_a_unit_never_scores_itself(world):
    """The policy refuses a self-scoring assignment, the service refuses it, and the database cannot hold one."""
    self_scoring = Assignment(
        campaign_id=world.campaign.id, rater_unit_id=world.a.id, ratee_unit_id=world.a.id,
        status=AssignmentStatus.OPEN,
    )
    for action in (Action.VIEW_ASSIGNMENT, Action.ENTER_INTERVIEWS, Action.SUBMIT_ASSIGNMENT):
        assert not can(world.auditor_a, action, self_scoring)

    # The service checks again even if asked directly with A's auditor on C → A (A would score itself).
    with pytest.raises(interviews.InterviewError) as refused:
        interviews.record_interview(world.c_scores_a, interview(world), world.auditor_a)
    assert refused.value.status == 403

    with pytest.raises(IntegrityError):
        db.session.add(
            Assignment(campaign_id=world.campaign.id, rater_unit_id=world.b.id, ratee_unit_id=world.b.id, quota=1)
        )
        db.session.flush()
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(Response.id))) == 0
