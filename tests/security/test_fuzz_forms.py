"""Generated junk posted to every form: survey pages, login, the auditor's entry form and JSON queue, HQ forms.

For every case: never a 500; a refused request (4xx) changes no row and says what is wrong; an
accepted one changes only what it should (one response for one submission, never half of it).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from survey.extensions import db
from survey.models import Invitation, Response, utcnow
from survey.services.invitations import issue_invitations

from .helpers import FIGURES, World, changed_tables, csrf_from, fingerprint, row_counts, says_what_is_wrong
from .strategies import form_fields, fuzz_settings, json_values, junk_text, score_value


def check_refusal(response: Any, before: dict[str, str], what: str) -> None:
    """A refused request: a 4xx that changed nothing and says why."""
    assert response.status_code < 500, f"{what}: {response.status_code}"
    if response.status_code >= 400:
        assert changed_tables(before, fingerprint()) == [], f"{what}: refused ({response.status_code}) but wrote"
        assert says_what_is_wrong(response), f"{what}: {response.status_code} without a message"
    outcome(response.status_code < 400)


def outcome(accepted: bool) -> None:
    """Count what became of a generated case, so the figures show the junk was not all refused at the door."""
    FIGURES["outcome: accepted (valid after all)" if accepted else "outcome: refused, with a message"] += 1


# --- The customer survey ---------------------------------------------------------------------------


def _link_on_last_page(world: World) -> tuple[str, int, int]:
    """A new invitation whose earlier pages are answered: the next 'next' on the last page submits it."""
    questionnaire = world.campaign.questionnaire
    issued = issue_invitations(world.campaign, world.units[2], 1)[0]
    dimensions = questionnaire.dimensions
    issued.invitation.draft_answers = {item.code: 7 for d in dimensions[:-1] for item in d.items}
    issued.invitation.draft_page = len(dimensions)
    issued.invitation.draft_saved_at = utcnow()
    db.session.commit()
    return issued.token, issued.invitation.id, len(dimensions)


@fuzz_settings(80)
@given(data=st.data())
def test_survey_page_junk(world: World, browser: Any, data: st.DataObject) -> None:
    FIGURES["fuzz: customer survey page (last page, submits)"] += 1
    token, invitation_id, last = _link_on_last_page(world)
    items = [item.code for item in world.campaign.questionnaire.dimensions[-1].items]
    fields = data.draw(form_fields({code: score_value for code in items}), label="fields")
    action = data.draw(st.one_of(st.sampled_from(["next", "back", "save", None]), junk_text), label="_action")
    if action is not None:
        fields["_action"] = action
    client = browser()
    csrf = csrf_from(client.get(f"/s/{token}/{last}").get_data(as_text=True))
    before = fingerprint()
    response = client.post(f"/s/{token}/{last}", data={**fields, "csrf_token": csrf})
    check_refusal(response, before, f"survey {fields!r}")
    db.session.expire_all()
    stored = db.session.scalars(sa.select(Response).where(Response.invitation_id == invitation_id)).all()
    used = db.session.scalar(sa.select(Invitation.used_at).where(Invitation.id == invitation_id))
    # All or nothing: the response and the used link together, or neither.
    assert (len(stored), used is not None) in ((0, False), (1, True))
    if stored:
        assert response.status_code == 303 and response.headers["Location"].endswith("/thanks")
        assert set(stored[0].answers) == {item.code for item in world.campaign.questionnaire.items}


# --- Login -----------------------------------------------------------------------------------------


@fuzz_settings(60)
@given(fields=form_fields({"email": st.sampled_from(["hq@evnnpc.vn", " HQ@EVNNPC.VN "]),
                           "password": st.sampled_from(["correct horse 42", "wrong horse 42"])}))
def test_login_junk(world: World, browser: Any, fields: dict[str, str]) -> None:
    FIGURES["fuzz: login form"] += 1
    client = browser()
    csrf = csrf_from(client.get("/login").get_data(as_text=True))
    before = fingerprint()
    response = client.post("/login", data={**fields, "csrf_token": csrf})
    check_refusal(response, before, f"login {fields!r}")
    signed_in = client.get("/hq/").status_code == 200
    right = fields.get("email", "").strip().lower() == world.hq.email and fields.get("password") == "correct horse 42"
    assert signed_in == (right and response.status_code == 302), fields
    if not signed_in:
        assert changed_tables(before, fingerprint()) == [], "a failed login changed stored data"


# --- The auditor's entry form and its JSON queue -----------------------------------------------------


def _entry_fields(world: World) -> dict[str, Any]:
    return {
        "customer_group": st.sampled_from(["household", "business"]),
        "respondent_id": st.uuids().map(lambda u: "PA" + u.hex[:12].upper()),
        "interview_id": st.uuids().map(str),
        **{code: score_value for code in world.item_codes},
    }


@fuzz_settings(60)
@given(data=st.data())
def test_auditor_entry_form_junk(world: World, signed_in: Any, data: st.DataObject) -> None:
    FIGURES["fuzz: auditor interview form"] += 1
    fields = data.draw(form_fields(_entry_fields(world)), label="fields")
    client, csrf = signed_in["auditor"]
    url = f"/audit/assignments/{world.open_assignment.id}/interviews/new"
    before, counts = fingerprint(), row_counts()
    response = client.post(url, data={**fields, "csrf_token": csrf})
    check_refusal(response, before, f"entry {fields!r}")
    added = row_counts()["response"] - counts["response"]
    assert added in (0, 1)
    if added:
        assert response.status_code == 303


@fuzz_settings(120)
@given(body=st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={
        "interview_id": st.one_of(st.uuids().map(str), json_values),
        "customer_group": st.one_of(st.sampled_from(["household", "business"]), json_values),
        "respondent_id": st.one_of(st.uuids().map(lambda u: "PA" + u.hex[:10]), json_values),
        "answers": st.one_of(json_values, st.dictionaries(st.sampled_from(["supply_stability", "x", ""]), json_values)),
    }),
    st.binary(max_size=60),
))
def test_auditor_json_queue_junk(world: World, signed_in: Any, body: Any) -> None:
    FIGURES["fuzz: auditor JSON queue"] += 1
    client, csrf = signed_in["auditor"]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    before, counts = fingerprint(), row_counts()
    response = client.post(f"/audit/assignments/{world.open_assignment.id}/interviews.json", data=raw,
                           content_type="application/json", headers={"X-CSRFToken": csrf})
    check_refusal(response, before, f"json {raw[:200]!r}")
    assert response.is_json
    assert row_counts()["response"] - counts["response"] == (1 if response.status_code == 201 else 0)


@fuzz_settings(40)
@given(answers=st.dictionaries(st.sampled_from(["supply_stability", "customer_group", "zzz"]), score_value, max_size=3),
       group=st.one_of(st.none(), junk_text, st.sampled_from(["household", "business"])))
def test_interview_edit_junk(world: World, signed_in: Any, answers: dict[str, str], group: str | None) -> None:
    FIGURES["fuzz: auditor interview edit form"] += 1
    client, csrf = signed_in["auditor"]
    url = f"/audit/assignments/{world.open_assignment.id}/interviews/{world.cross_response.id}/edit"
    fields = {**{code: "7" for code in world.item_codes}, **answers}
    if group is not None:
        fields["customer_group"] = group
    before = fingerprint()
    response = client.post(url, data={**fields, "csrf_token": csrf})
    check_refusal(response, before, f"edit {fields!r}")


# --- HQ forms ---------------------------------------------------------------------------------------

def _hq_forms(world: World) -> list[tuple[str, dict[str, Any]]]:
    code = world.campaign.code
    return [
        (f"/hq/campaigns/{code}/assignments", {"raters_per_unit": st.integers(0, 5).map(str),
                                                "quota": st.integers(-1, 50).map(str), "seed": st.integers(0, 99).map(str),
                                                "due_on": st.dates().map(str), "replace": st.just("y")}),
        (f"/hq/campaigns/{code}/assignments/{world.submitted_assignment.id}",
         {"rater_unit": st.sampled_from([u.code for u in world.units]), "quota": st.integers(-1, 50).map(str),
          "due_on": st.dates().map(str)}),
        (f"/hq/campaigns/{code}/assignments/{world.submitted_assignment.id}/reopen", {"reason": junk_text}),
        (f"/hq/campaigns/{code}/assignments/{world.open_assignment.id}/approve", {"comment": junk_text}),
        (f"/hq/campaigns/{code}/review/{world.cross_response.id}",
         {"state": st.sampled_from(["received", "has_issues", "approved", "rejected"]), "comment": junk_text}),
        (f"/hq/campaigns/{code}/review/settings", {"count_only_approved": st.sampled_from(["y", "", "on"])}),
        ("/hq/campaigns/new", {"code": st.uuids().map(lambda u: "fz-" + u.hex[:8]),
                               "questionnaire": st.sampled_from(["default", "upload"]),
                               "target": st.floats(0, 12).map(str), "margin": st.floats(-1, 2).map(str),
                               "starts_on": st.dates().map(str), "ends_on": st.dates().map(str),
                               "previous_campaign": st.sampled_from(["", code]),
                               "web_source": st.sampled_from(["consultant", "cross"]),
                               "household_share": st.floats(-1, 2).map(str)}),
        (f"/hq/campaigns/{code}/settings", {"name_vi": st.just("Khảo sát 2017"), "name_en": st.just("Survey 2017"),
                                            "status": st.sampled_from(["draft", "open"]),
                                            "target": st.floats(0, 12).map(str), "margin": st.floats(-1, 2).map(str),
                                            "starts_on": st.dates().map(str), "ends_on": st.dates().map(str),
                                            "household_share": st.floats(-1, 2).map(str)}),
        (f"/hq/campaigns/{code}/quotas", {f"{kind}-{unit.code}": st.integers(-2, 30000).map(str)
                                          for unit in world.units for kind in ("consultant", "cross")}),
    ]


@fuzz_settings(100)
@given(data=st.data())
def test_hq_forms_junk(world: World, signed_in: Any, data: st.DataObject) -> None:
    FIGURES["fuzz: HQ forms (assignments, reopen, review, approve, counting, campaign set-up, quotas)"] += 1
    url, fields = data.draw(st.sampled_from(_hq_forms(world)), label="form")
    values = data.draw(form_fields(fields), label="fields")
    client, csrf = signed_in["hq"]
    before = fingerprint()
    response = client.post(url, data={**values, "csrf_token": csrf})
    check_refusal(response, before, f"{url} {values!r}")


def test_fuzzed_interview_ids_are_unique(world: World) -> None:
    """The generated UUIDs above never collide with the world's (a collision would hide a duplicate)."""
    keys = db.session.scalars(sa.select(Response.idempotency_key).where(Response.idempotency_key.is_not(None))).all()
    assert len(keys) == len(set(keys)) and all(uuid.UUID(k) for k in keys if not k.startswith("invitation-"))
