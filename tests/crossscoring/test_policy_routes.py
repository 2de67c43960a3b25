"""Every route of the application, with every role, against one table of who may use it.

The table lists each endpoint with the roles the policy lets through. A route added anywhere
without an entry here fails `test_every_route_has_an_entry`, so access is decided on purpose.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.routing import Rule

from .conftest import add_cross_response, csrf_from, login

ANONYMOUS, HQ, AUDITOR_A, AUDITOR_B, MANAGER_A = "anonymous", "hq", "auditor_a", "auditor_b", "manager_a"
ROLES = (ANONYMOUS, HQ, AUDITOR_A, AUDITOR_B, MANAGER_A)
EVERYONE = frozenset(ROLES)
NOBODY: frozenset[str] = frozenset()  # no session role; only an API key opens it


@dataclass(frozen=True)
class Access:
    """Who may use an endpoint, and how a refusal looks for anonymous visitors."""

    allowed: frozenset[str]
    #: "login": anonymous visitors are sent to /login; "401": JSON endpoints answer 401.
    anonymous_refusal: str = "login"
    #: Extra request arguments for a POST (JSON body and the like).
    post: dict[str, Any] = field(default_factory=dict)


def only(*roles: str) -> frozenset[str]:
    return frozenset(roles)


#: Unit A's own assignment (A scores another unit) is the object of every assignment route;
#: unit A is the object of unit routes. Extend this table when you add a route.
EXPECTED: dict[str, Access] = {
    # Shared
    "static": Access(EVERYONE),
    "home": Access(EVERYONE),  # sends each role to its workspace, anonymous visitors to /login
    "auth.login": Access(EVERYONE),
    "auth.logout": Access(EVERYONE),
    # Customer survey (the personal token is the key)
    "public.intro": Access(EVERYONE),
    "public.page": Access(EVERYONE),
    "public.thanks": Access(EVERYONE),
    # HQ workspace (D1)
    "hq.index": Access(only(HQ)),
    "hq.assignments": Access(only(HQ)),
    "hq.generate_assignments": Access(only(HQ)),
    "hq.edit_assignment": Access(only(HQ)),
    "hq.reopen": Access(only(HQ)),
    "hq.approve": Access(only(HQ)),
    "hq.progress": Access(only(HQ)),
    "hq.review": Access(only(HQ)),
    "hq.review_detail": Access(only(HQ)),
    "hq.counting": Access(only(HQ)),
    # HQ campaign set-up and data upload
    "hq.new_campaign": Access(only(HQ)),
    "hq.settings": Access(only(HQ)),
    "hq.quotas": Access(only(HQ)),
    "hq.import_file": Access(only(HQ)),
    # HQ reports (issue 5)
    "reports.page": Access(only(HQ)),
    "reports.download": Access(only(HQ)),
    "reports.chart": Access(only(HQ)),
    "reports.raw_export": Access(only(HQ)),
    # Auditor workspace (D2): only auditors of the assignment's rater unit enter and submit; HQ may look.
    "audit.workspace": Access(only(AUDITOR_A, AUDITOR_B)),
    "audit.csrf_json": Access(only(AUDITOR_A, AUDITOR_B), anonymous_refusal="401"),
    "audit.assignment": Access(only(HQ, AUDITOR_A)),
    "audit.template_csv": Access(only(HQ, AUDITOR_A)),
    "audit.new_interview": Access(only(AUDITOR_A)),
    "audit.edit_interview": Access(only(AUDITOR_A)),
    "audit.upload": Access(only(AUDITOR_A)),
    "audit.submit": Access(only(AUDITOR_A)),
    "audit.interviews_json": Access(
        only(AUDITOR_A),
        anonymous_refusal="401",
        post={"json": {"interview_id": "new", "customer_group": "household", "answers": {}}},
    ),
    "audit.service_worker": Access(EVERYONE),  # the offline shell: code only, no data
    "audit.offline": Access(EVERYONE),
    # Unit managers (issue 5)
    "unit.index": Access(only(HQ, MANAGER_A)),
    "unit.page": Access(only(HQ, MANAGER_A)),
    # JSON API (issue 5): API keys, never sessions
    "api.openapi_document": Access(EVERYONE),
    "api.campaign_report": Access(NOBODY, anonymous_refusal="401"),
    "api.unit_report": Access(NOBODY, anonymous_refusal="401"),
}

#: Session-less endpoints answer 401 to everyone without a key, logged in or not.
API_ENDPOINTS = {"api.campaign_report", "api.unit_report"}


def test_every_route_has_an_entry(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    missing = sorted(endpoints - set(EXPECTED))
    stale = sorted(set(EXPECTED) - endpoints)
    assert not missing, f"add these endpoints to EXPECTED in {__file__}: {missing}"
    assert not stale, f"these endpoints no longer exist; remove them from EXPECTED: {stale}"


@pytest.fixture
def walk_world(cross: Any, make_invitation: Any) -> dict[str, Any]:
    """URL values for every route: unit A's assignment and one of its responses, a live survey token."""
    unit_a = cross.units[0]
    assignment = cross.of_rater(unit_a)[0]
    response = add_cross_response(cross.campaign, assignment, "walk-1", user=cross.auditor_a)
    _, token = make_invitation(cross.campaign, unit_a)
    return {
        "cross": cross,
        "values": {
            "code": cross.campaign.code,
            "assignment_id": assignment.id,
            "response_id": response.id,
            "unit_code": unit_a.code,
            "token": token,
            "number": 1,
            "filename": "app.css",
            "fmt": "csv",
            "name": "forest",
        },
    }


def url_for_rule(rule: Rule, values: dict[str, Any]) -> str:
    return rule.build({name: values[name] for name in rule.arguments})[1]  # type: ignore[index]


def request(client: Any, method: str, url: str, token: str | None, access: Access) -> Any:
    if method == "GET":
        return client.get(url)
    extra = dict(access.post)
    if "json" in extra:
        extra["json"] = dict(extra["json"], interview_id=str(uuid.uuid4()))
        return client.post(url, headers={"X-CSRFToken": token or ""}, **extra)
    return client.post(url, data={"csrf_token": token or ""})


@pytest.mark.parametrize("role", ROLES)
def test_every_route_with_every_role(second_app, walk_world, role):
    cross = walk_world["cross"]
    # A second app on the same database: its requests get their own app context (and flask.g), as in production.
    walk_app = second_app()
    client = walk_app.test_client()
    accounts = {HQ: cross.hq, AUDITOR_A: cross.auditor_a, AUDITOR_B: cross.auditor_b, MANAGER_A: cross.manager_a}
    if role == ANONYMOUS:
        token = csrf_from(client.get("/login").text)
    else:
        assert login(client, accounts[role].email).status_code == 302
        token = csrf_from(client.get("/", follow_redirects=True).text)
    # Endpoints that change the assignment's state or end the session come last.
    last = ("audit.submit", "hq.reopen", "auth.logout")
    rules = sorted(walk_app.url_map.iter_rules(), key=lambda r: (last.index(r.endpoint) if r.endpoint in last else -1,
                                                            r.endpoint, r.rule))
    problems = []
    for rule in rules:
        access = EXPECTED[rule.endpoint]
        url = url_for_rule(rule, walk_world["values"])
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = request(client, method, url, token, access)
            status = response.status_code
            response.get_data()  # consume streamed bodies, then release files (static) and contexts
            response.close()
            to_login = status in (301, 302, 303) and "/login" in (response.location or "")
            where = f"{method} {url} ({rule.endpoint}) as {role}: {status}"
            if status >= 500:
                problems.append(f"{where} — server error")
            elif rule.endpoint in API_ENDPOINTS:
                if status != 401:
                    problems.append(f"{where} — expected 401 without an API key")
            elif role in access.allowed:
                if status in (401, 403) or (to_login and rule.endpoint not in ("home", "auth.logout")):
                    problems.append(f"{where} — expected to be let through")
            elif role == ANONYMOUS:
                expected_401 = access.anonymous_refusal == "401"
                if (expected_401 and status != 401) or (not expected_401 and not to_login):
                    problems.append(f"{where} — expected {'401' if expected_401 else 'a redirect to /login'}")
            elif status != 403:
                problems.append(f"{where} — expected 403")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", ["/hq/campaigns/no-such/progress", "/hq/campaigns/no-such/review/999999",
                                  "/hq/campaigns/no-such/settings", "/hq/campaigns/no-such/quotas",
                                  "/hq/campaigns/no-such/import"])
def test_hq_asks_the_policy_before_looking_anything_up(make_units, make_user, second_app, path):
    """An auditor gets 403 and an anonymous visitor the login page, whether or not the campaign exists."""
    from survey.models import Role

    client = second_app().test_client()
    anonymous = client.get(path)
    assert anonymous.status_code == 302 and "/login" in anonymous.location
    make_user("auditor@evnnpc.vn", Role.AUDITOR, make_units(1)[0])
    login(client, "auditor@evnnpc.vn")
    assert client.get(path).status_code == 403
