"""SQL injection, path traversal, NUL bytes and other hostile strings in every URL and query parameter.

Every route is asked with each attack in each of its path arguments and in each query
parameter its view reads (found in the view's source, so a new parameter is covered without
editing this file), by the role that may use the route: the answer is never a 500, and no
stored data changes (a successful download may add its export event, nothing else).
"""

from __future__ import annotations

import inspect
import re
import urllib.parse
from typing import Any

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import AuditEvent
from survey.services.reports import RAW_PARAMETERS

from .helpers import (
    ATTACKS,
    QUERY_ATTACKS,
    FIGURES,
    World,
    app_rules,
    argument_values,
    changed_tables,
    csrf_from,
    fingerprint,
    path_with,
    token_page,
)
from .test_csrf import requests_for, send

#: Query parameters read outside the view function itself.
INDIRECT_PARAMETERS = {
    "reports.raw_export": set(RAW_PARAMETERS),
    "unit.page": {"campaign"},
    "unit.index": {"campaign"},
}
READS = re.compile(r"""request\.args(?:\.get|\.getlist)?\s*[(\[]\s*["'](\w+)["']|_int_arg\(\s*["'](\w+)["']""")


def query_parameters(app: Any, endpoint: str) -> list[str]:
    """The query parameters a route reads, plus ``lang`` (every page) and one it does not know."""
    source = inspect.getsource(app.view_functions[endpoint])
    names = {a or b for a, b in READS.findall(source)} | INDIRECT_PARAMETERS.get(endpoint, set())
    return sorted(names | {"lang", "unknown"})


def role_for(endpoint: str) -> str:
    """Who may use a route: the attacker is as privileged as the route allows."""
    prefix = endpoint.split(".")[0]
    return {"hq": "hq", "reports": "hq", "unit": "hq", "audit": "auditor", "api": "api", "public": "customer"}.get(
        prefix, "anonymous"
    )


def quoted(text: str) -> str:
    return urllib.parse.quote(text, safe="")


@pytest.fixture
def clients(world: World, browser: Any) -> dict[str, tuple[Any, dict[str, str]]]:
    return {
        "anonymous": (browser(), {}),
        "customer": (browser(), {}),
        "hq": (browser(world.hq.email), {}),
        "auditor": (browser(world.auditor.email), {}),
        "api": (browser(), {"Authorization": f"Bearer {world.api_key}"}),
    }


def test_hostile_path_arguments(app: Any, world: World, clients: Any, cached_reports: Any) -> None:
    table = requests_for(world)
    tokens = {}
    problems = []
    for method in ("GET", "POST"):
        for rule in app_rules(app, method):
            if not rule.arguments or rule.endpoint == "static" or rule.endpoint == "auth.logout":
                continue
            role = table[rule.endpoint][0] if method == "POST" else role_for(rule.endpoint)
            client, headers = clients[role]
            real = {k: urllib.parse.quote(str(v), safe="") for k, v in argument_values(world, rule)[0].items()}
            before = fingerprint()
            for argument in sorted(rule.arguments):
                for attack in ATTACKS:
                    url = path_with(rule, {**real, argument: quoted(attack)})
                    if method == "GET":
                        response = client.get(url, headers=headers)
                    else:
                        if role not in tokens:
                            tokens[role] = csrf_from(client.get(token_page(world, role)).get_data(as_text=True))
                        response = send(client, url, table[rule.endpoint][1](), tokens[role])
                    FIGURES["table: hostile path argument"] += 1
                    if response.status_code >= 500 or response.status_code < 400:
                        problems.append(f"{role} {method} {url[:120]!r} → {response.status_code}")
            changed = changed_tables(before, fingerprint())
            if changed:
                problems.append(f"{method} {rule.rule}: hostile arguments changed {changed}")
    assert not problems, "\n".join(problems[:40])


def _is_export(endpoint: str) -> bool:
    """Downloads and API reads are exports (each has its audit event); pages and charts are not."""
    if endpoint.startswith("api."):
        return endpoint != "api.openapi_document"
    return endpoint.startswith("reports.") and endpoint not in ("reports.chart", "reports.page")


def test_hostile_query_parameters(app: Any, world: World, clients: Any, cached_reports: Any) -> None:
    problems = []
    for rule in app_rules(app, "GET"):
        if rule.endpoint == "static":
            continue
        role = role_for(rule.endpoint)
        client, headers = clients[role]
        base = app.url_map.bind("localhost").build(rule.endpoint, argument_values(world, rule)[0])
        before = fingerprint()
        exports_before = _exports()
        exported = 0
        names = query_parameters(app, rule.endpoint)
        for name in [*names, *QUERY_ATTACKS]:
            for attack in QUERY_ATTACKS if name in names else ("1",):
                url = f"{base}?{quoted(name)}={quoted(attack)}"
                response = client.get(url, headers=headers)
                FIGURES["table: hostile query parameter"] += 1
                if response.status_code >= 500:
                    problems.append(f"{role} GET {url[:120]!r} → {response.status_code}")
                elif response.status_code < 300 and _is_export(rule.endpoint):
                    exported += 1
        changed = changed_tables(before, fingerprint())
        if changed:
            problems.append(f"GET {rule.rule}: hostile query parameters changed {changed}")
        if _exports() - exports_before != exported:
            problems.append(f"GET {rule.rule}: {exported} downloads but {_exports() - exports_before} export events")
    assert not problems, "\n".join(problems[:40])


def _exports() -> int:
    db.session.expire_all()
    count = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == "export"))
    db.session.rollback()
    return int(count or 0)


def test_no_open_redirect_after_login(world: World, browser: Any) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "\\\\evil.example", "javascript:alert(1)",
                   "/%2F%2Fevil.example", "%2F%2Fevil.example"):
        client = browser()
        page = client.get(f"/login?next={quoted(target)}")
        response = client.post(f"/login?next={quoted(target)}", data={
            "email": world.hq.email, "password": "correct horse 42", "csrf_token": csrf_from(page.get_data(as_text=True))})
        FIGURES["table: open-redirect target"] += 1
        assert response.status_code == 302
        location = urllib.parse.urlsplit(response.headers["Location"])
        assert location.netloc in ("", "localhost"), (target, response.headers["Location"])
        assert not response.headers["Location"].startswith(("//", "/\\", "javascript:")), target
