"""HQ pages: campaigns home, assignments (generate, change, reopen) with the recommended design."""

from __future__ import annotations

import time

import sqlalchemy as sa

from survey.extensions import db
from survey.models import Assignment, AssignmentStatus, AuditEvent
from survey.services.assignments import submit_assignment

from .conftest import add_cross_response, csrf_from, login


def assignments_url(cross) -> str:
    return f"/hq/campaigns/{cross.campaign.code}/assignments"


def count_assignments() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Assignment))


def test_home_lists_campaigns_with_links(cross, client):
    add_cross_response(cross.campaign, cross.assignments[0], "r-1")
    login(client, "hq@evnnpc.vn")
    page = client.get("/hq/?lang=en")
    assert page.status_code == 200
    assert "cross-2017" in page.text and assignments_url(cross) in page.text
    assert f"/hq/campaigns/{cross.campaign.code}/progress" in page.text
    assert ">14<" in page.text and ">1<" in page.text  # assignments and cross responses


def test_home_in_vietnamese_by_default(cross, client):
    login(client, "hq@evnnpc.vn")
    page = client.get("/hq/")
    assert "Chiến dịch" in page.text and "Phân công" in page.text


def test_assignments_page_is_fast_and_shows_the_recommended_design(cross, client):
    login(client, "hq@evnnpc.vn")
    started = time.perf_counter()
    page = client.get(assignments_url(cross) + "?lang=en")
    elapsed = time.perf_counter() - started
    assert page.status_code == 200
    assert elapsed < 2.0
    assert "7 units: at most 3 auditing units per unit." in page.text
    assert "Recommended: 2 auditing units per unit." in page.text
    for assignment in cross.assignments:
        assert f'id="assignment-{assignment.id}"' in page.text


def test_generate_needs_replace_when_assignments_exist(cross, client):
    login(client, "hq@evnnpc.vn")
    token = csrf_from(client.get(assignments_url(cross)).text)
    form = {"csrf_token": token, "raters_per_unit": "3", "quota": "20", "seed": "5"}
    refused = client.post(assignments_url(cross), data=form)
    assert refused.status_code == 409 and count_assignments() == 14
    done = client.post(assignments_url(cross), data={**form, "replace": "y"})
    assert done.status_code == 302
    rows = db.session.scalars(sa.select(Assignment)).all()
    assert len(rows) == 21 and {a.quota for a in rows} == {20}


def test_generate_refuses_impossible_k_with_the_reason(cross, client):
    login(client, "hq@evnnpc.vn")
    token = csrf_from(client.get(assignments_url(cross)).text)
    page = client.post(assignments_url(cross) + "?lang=en",
                       data={"csrf_token": token, "raters_per_unit": "4", "quota": "20", "replace": "y"})
    assert page.status_code == 409
    assert "at least 9 units" in page.text
    assert count_assignments() == 14


def test_generate_refuses_bad_numbers(cross, client):
    login(client, "hq@evnnpc.vn")
    token = csrf_from(client.get(assignments_url(cross)).text)
    for bad in ({"raters_per_unit": "two", "quota": "20"}, {"raters_per_unit": "2", "quota": "-1"},
                {"raters_per_unit": "2", "quota": "20", "seed": "x"}):
        page = client.post(assignments_url(cross), data={"csrf_token": token, "replace": "y", **bad})
        assert page.status_code == 400 and "field-error" in page.text
    assert {a.quota for a in db.session.scalars(sa.select(Assignment))} == {3}


def test_generate_after_work_started_is_refused(cross, client):
    add_cross_response(cross.campaign, cross.assignments[0], "r-1")
    login(client, "hq@evnnpc.vn")
    token = csrf_from(client.get(assignments_url(cross)).text)
    page = client.post(assignments_url(cross) + "?lang=en",
                       data={"csrf_token": token, "raters_per_unit": "2", "quota": "20", "replace": "y"})
    assert page.status_code == 409 and "Work has started" in page.text
    assert {a.quota for a in db.session.scalars(sa.select(Assignment))} == {3}


def test_edit_assignment_page(cross, client):
    assignment = cross.assignments[0]
    login(client, "hq@evnnpc.vn")
    url = f"{assignments_url(cross)}/{assignment.id}"
    page = client.get(url)
    token = csrf_from(page.text)
    rater_code = assignment.rater_unit.code
    saved = client.post(url, data={"csrf_token": token, "rater_unit": rater_code, "quota": "45",
                                   "due_on": "2017-09-30"})
    assert saved.status_code == 302
    db.session.expire_all()
    assert db.session.get(Assignment, assignment.id).quota == 45
    # The scored unit itself is not even offered; forging it is refused.
    forged = client.post(url, data={"csrf_token": token, "rater_unit": assignment.ratee_unit.code, "quota": "45"})
    assert forged.status_code == 400
    add_cross_response(cross.campaign, assignment, "r-1")
    locked = client.post(url + "?lang=en", data={"csrf_token": token, "rater_unit": rater_code, "quota": "99"})
    assert locked.status_code == 409 and "has started" in locked.text
    db.session.expire_all()
    assert db.session.get(Assignment, assignment.id).quota == 45


def test_reopen_from_the_page(cross, client):
    assignment = cross.assignments[0]
    submit_assignment(assignment, cross.auditor_a)
    login(client, "hq@evnnpc.vn")
    page = client.get(assignments_url(cross))
    token = csrf_from(page.text)
    url = f"{assignments_url(cross)}/{assignment.id}/reopen"
    assert f'action="{url}"' in page.text
    assert client.post(url, data={"csrf_token": token, "reason": ""}).status_code == 400
    done = client.post(url, data={"csrf_token": token, "reason": "Interviews 4 and 5 belong to another district."})
    assert done.status_code == 302
    db.session.expire_all()
    reopened = db.session.get(Assignment, assignment.id)
    assert reopened.status == AssignmentStatus.OPEN and reopened.reopen_reason.startswith("Interviews 4")
    assert db.session.scalar(sa.select(AuditEvent.actor).where(AuditEvent.action == "reopen")) == "hq@evnnpc.vn"
    again = client.post(url, data={"csrf_token": token, "reason": "again"})
    assert again.status_code == 409


def test_assignment_of_another_campaign_is_not_found(cross, client, make_campaign):
    make_campaign(code="other-2018", units=0)
    login(client, "hq@evnnpc.vn")
    assert client.get(f"/hq/campaigns/other-2018/assignments/{cross.assignments[0].id}").status_code == 404


def test_design_simulation_runs_in_the_background_and_is_cached(cross, app, tmp_path):
    """The page never waits for the simulation: it starts it once, and shows its result when it is done."""
    from survey.services.assignments import recommended_design

    app.config.update(DESIGN_SIMULATION=True, DESIGN_SIMULATION_REPLICATES=1)
    app.instance_path = str(tmp_path)
    first = recommended_design(cross.campaign)
    assert first.pending and not first.simulated and first.raters_per_unit == 2
    deadline = time.monotonic() + 300
    while not list((tmp_path / "design-advice").glob("*.json")):
        assert time.monotonic() < deadline, "the simulation did not finish in 5 minutes"
        time.sleep(0.5)
    done = recommended_design(cross.campaign)
    assert done.simulated and not done.pending
    assert [row.raters_per_unit for row in done.rows] == [2]  # 7 units allow only k = 2 in the comparison
    assert done.quota == done.rows[0].quota == done.cross_per_unit // 2
