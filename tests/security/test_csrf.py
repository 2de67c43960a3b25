"""CSRF: every state-changing route refuses a request without a valid token, and changes nothing.

The table lists every POST route of the app; a new route without an entry fails the test, so
nobody adds a form without deciding how it is protected. The API has no state-changing route.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from .helpers import FIGURES, World, app_rules, changed_tables, csrf_from, fingerprint, interview_payload, token_page

STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")


def requests_for(world: World) -> dict[str, tuple[str, Callable[[], dict[str, Any]]]]:
    """endpoint → (role, the request's keyword arguments as a valid client would send them, token aside)."""
    code = world.campaign.code
    items = {item: "7" for item in world.item_codes}
    first_page_items = {item.code: "8" for item in world.campaign.questionnaire.dimensions[0].items}
    return {
        "audit.interviews_json": ("auditor", lambda: {"json": interview_payload(world.item_codes, "PA01HH0077001")}),
        "audit.edit_interview": ("auditor", lambda: {"data": {**items, "customer_group": "business"}}),
        "audit.new_interview": ("auditor", lambda: {"data": {
            **items, "customer_group": "household", "respondent_id": "PA01HH0077002",
            "interview_id": interview_payload([])["interview_id"]}}),
        "audit.submit": ("auditor", lambda: {"data": {}}),
        "audit.upload": ("auditor", lambda: {"data": {"file": (io.BytesIO(b"rater_unit,ratee_unit\n"), "x.csv")},
                                             "content_type": "multipart/form-data"}),
        "hq.generate_assignments": ("hq", lambda: {"data": {"raters_per_unit": "1", "quota": "3", "replace": "y"}}),
        "hq.edit_assignment": ("hq", lambda: {"data": {"rater_unit": world.units[2].code, "quota": "4"}}),
        "hq.approve": ("hq", lambda: {"data": {"comment": ""}}),
        "hq.reopen": ("hq", lambda: {"data": {"reason": "Thiếu phiếu"}}),
        "hq.review_detail": ("hq", lambda: {"data": {"state": "approved", "comment": ""}}),
        "hq.counting": ("hq", lambda: {"data": {"count_only_approved": "y"}}),
        "hq.new_campaign": ("hq", lambda: {"data": {"code": "csrf-2018", "questionnaire": "default", "target": "7.5",
                                                    "margin": "0.3", "web_source": "consultant"}}),
        "hq.settings": ("hq", lambda: {"data": {"name_vi": "Khảo sát 2017", "name_en": "Survey 2017", "status": "open",
                                                "target": "7.6", "margin": "0.3"}}),
        "hq.quotas": ("hq", lambda: {"data": {f"{kind}-{unit.code}": "0" for unit in world.units
                                              for kind in ("consultant", "cross")}}),
        "hq.import_file": ("hq", lambda: {"data": {"kind": "consultant", "file": (
            io.BytesIO(("unit_code,respondent_id,customer_group," + ",".join(world.item_codes) + "\n").encode()),
            "tuvan.csv")}, "content_type": "multipart/form-data"}),
        "auth.login": ("anonymous", lambda: {"data": {"email": world.hq.email, "password": "correct horse 42"}}),
        "auth.logout": ("hq", lambda: {"data": {}}),
        "public.page": ("customer", lambda: {"data": {**first_page_items, "_action": "save"}}),
    }


def url_of(app: Any, world: World, endpoint: str) -> str:
    code = world.campaign.code
    values: dict[str, Any] = {
        "audit.interviews_json": {"assignment_id": world.open_assignment.id},
        "audit.edit_interview": {"assignment_id": world.open_assignment.id, "response_id": world.cross_response.id},
        "audit.new_interview": {"assignment_id": world.open_assignment.id},
        "audit.submit": {"assignment_id": world.open_assignment.id},
        "audit.upload": {"assignment_id": world.open_assignment.id},
        "hq.generate_assignments": {"code": code},
        "hq.edit_assignment": {"code": code, "assignment_id": world.submitted_assignment.id},
        "hq.approve": {"code": code, "assignment_id": world.open_assignment.id},
        "hq.reopen": {"code": code, "assignment_id": world.submitted_assignment.id},
        "hq.review_detail": {"code": code, "response_id": world.cross_response.id},
        "hq.counting": {"code": code},
        "hq.new_campaign": {},
        "hq.settings": {"code": code},
        "hq.quotas": {"code": code},
        "hq.import_file": {"code": code},
        "auth.login": {},
        "auth.logout": {},
        "public.page": {"token": world.token, "number": 1},
    }[endpoint]
    return app.url_map.bind("localhost").build(endpoint, values)


def send(client: Any, url: str, kwargs: dict[str, Any], token: str | None) -> Any:
    """POST like the page (form field) or the offline queue (X-CSRFToken header) does, with ``token`` or none."""
    kwargs = dict(kwargs)
    headers = {}
    if "json" in kwargs:
        if token is not None:
            headers["X-CSRFToken"] = token
        return client.post(url, data=json.dumps(kwargs.pop("json")), content_type="application/json", headers=headers)
    if token is not None:
        kwargs["data"] = {**kwargs["data"], "csrf_token": token}
    return client.post(url, **kwargs)


def test_the_api_changes_nothing(app: Any) -> None:
    for method in STATE_CHANGING:
        assert [r.rule for r in app_rules(app, method) if r.endpoint.startswith("api.")] == []


@pytest.mark.parametrize("forged", [False, True], ids=["no token", "forged token"])
def test_every_state_changing_request_needs_a_valid_token(app: Any, world: World, browser: Any, forged: bool) -> None:
    table = requests_for(world)
    routes = {rule.endpoint for method in STATE_CHANGING for rule in app_rules(app, method)}
    assert routes == set(table), f"routes without a CSRF case: {sorted(routes - set(table))}"
    clients = {"anonymous": browser(), "customer": browser(), "hq": browser(world.hq.email),
               "auditor": browser(world.auditor.email)}
    tokens = {role: csrf_from(clients[role].get(token_page(world, role)).get_data(as_text=True)) for role in clients}
    # A forged token: another session's real token, which is signed but bound to that session.
    stranger = csrf_from(browser().get("/login").get_data(as_text=True))
    refused = []
    for endpoint in sorted(table):
        role, make = table[endpoint]
        url = url_of(app, world, endpoint)
        before = fingerprint(exclude_exports=False)
        response = send(clients[role], url, make(), stranger if forged else None)
        FIGURES["table: state-changing route without a valid CSRF token"] += 1
        assert response.status_code == 400, f"{endpoint}: {response.status_code}"
        assert changed_tables(before, fingerprint(exclude_exports=False)) == [], endpoint
        refused.append(endpoint)
    # The control: the same requests with the session's token are not refused for their token.
    # (Logout last: it ends the HQ session the other requests use.)
    for endpoint in sorted(table, key=lambda e: e == "auth.logout"):
        role, make = table[endpoint]
        response = send(clients[role], url_of(app, world, endpoint), make(), tokens[role])
        assert response.status_code != 400, f"{endpoint} refused even with its token: {response.status_code}"
    assert len(refused) == len(table)
