"""Every GET route, for every role: no 500, the security headers, a strict CSP, and no inline code in the HTML."""

from __future__ import annotations

from typing import Any

from survey import web

from .helpers import FIGURES, ROLES, World, app_rules, argument_values, changed_tables, fingerprint, inline_code

#: Headers every response carries, whatever its type or status.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def role_clients(world: World, browser: Any) -> dict[str, tuple[Any, dict[str, str]]]:
    """A browser per role, with the headers it sends (the API client sends its key)."""
    return {
        "anonymous": (browser(), {}),
        "customer": (browser(), {}),
        "hq": (browser(world.hq.email), {}),
        "auditor": (browser(world.auditor.email), {}),
        "manager": (browser(world.manager.email), {}),
        "api": (browser(), {"Authorization": f"Bearer {world.api_key}"}),
    }


def test_the_policy_allows_no_inline_code() -> None:
    policy = dict(part.strip().split(" ", 1) for part in web.CONTENT_SECURITY_POLICY.split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in web.CONTENT_SECURITY_POLICY


def test_every_page_for_every_role_is_safe_html(app: Any, world: World, browser: Any, cached_reports: Any) -> None:
    clients = role_clients(world, browser)
    before = fingerprint()
    problems: list[str] = []
    rendered: dict[str, set[str]] = {}
    for rule in app_rules(app, "GET"):
        for values in argument_values(world, rule):
            url = app.url_map.bind("localhost").build(rule.endpoint, values)
            for role in ROLES:
                client, headers = clients[role]
                response = client.get(url, headers=headers)
                FIGURES["table: GET route x role"] += 1
                where = f"{role} GET {url} → {response.status_code}"
                if response.status_code >= 500:
                    problems.append(f"{where}: server error")
                for name, value in SECURITY_HEADERS.items():
                    if response.headers.get(name) != value:
                        problems.append(f"{where}: {name} is {response.headers.get(name)!r}")
                policy = response.headers.get("Content-Security-Policy", "")
                if "script-src 'self'" not in policy and "default-src 'none'" not in policy:
                    problems.append(f"{where}: CSP {policy!r} allows scripts from elsewhere")
                if response.mimetype == "text/html":
                    if policy != web.CONTENT_SECURITY_POLICY:
                        problems.append(f"{where}: HTML page with CSP {policy!r}")
                    problems += [f"{where}: {found}" for found in inline_code(response.get_data(as_text=True))]
                if response.status_code == 200:
                    rendered.setdefault(rule.endpoint, set()).add(role)
    assert not problems, "\n".join(problems[:40])
    # The check means something only if every page was really rendered, by someone.
    unrendered = {r.endpoint for r in app_rules(app, "GET")} - set(rendered) - {"home"}  # "/" only redirects
    assert not unrendered, f"never rendered with 200: {sorted(unrendered)}"
    assert {"hq"} <= rendered["reports.page"] and {"manager", "hq"} <= rendered["unit.page"]
    assert {"auditor"} <= rendered["audit.new_interview"] and "api" in rendered["api.campaign_report"]
    assert changed_tables(before, fingerprint()) == [], "a GET request changed stored data"
