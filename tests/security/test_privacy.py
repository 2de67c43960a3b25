"""Privacy: managers never see free text or respondent-level data, raw exports are HQ's alone, exports are audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import AuditEvent, Response

from .helpers import (
    FIGURES,
    SECRET_COMMENT,
    SECRET_REOPEN,
    World,
    app_rules,
    argument_values,
)


def _texts(app: Any, world: World, client: Any, headers: dict[str, str] | None = None) -> dict[str, str]:
    """Every GET route's body (any status) as text, for one browser."""
    bodies = {}
    for rule in app_rules(app, "GET"):
        if rule.endpoint == "static":
            continue
        for values in argument_values(world, rule):
            url = app.url_map.bind("localhost").build(rule.endpoint, values)
            response = client.get(url, headers=headers or {})
            bodies[f"{url} ({response.status_code})"] = response.get_data().decode("utf-8", "replace")
    # A manager also tries every other unit's page and every campaign parameter.
    for unit in world.units:
        response = client.get(f"/unit/{unit.code}?campaign={world.campaign.code}")
        bodies[f"/unit/{unit.code} ({response.status_code})"] = response.get_data(as_text=True)
    return bodies


def test_free_text_and_respondents_never_reach_a_unit_manager(app: Any, world: World, browser: Any,
                                                                 cached_reports: Any) -> None:
    pseudonyms = set(db.session.scalars(sa.select(Response.respondent_id)))
    secrets = {"review comment": SECRET_COMMENT, "reopen reason": SECRET_REOPEN}
    manager = _texts(app, world, browser(world.manager.email))
    assert any(" (200)" in url and url.startswith(f"/unit/{world.units[1].code}") for url in manager), \
        "the manager's own unit page was never shown"
    leaks = []
    for url, body in manager.items():
        FIGURES["table: manager page searched"] += 1
        leaks += [f"{url}: {name}" for name, secret in secrets.items() if secret in body]
        leaks += [f"{url}: respondent {p[:10]}…" for p in pseudonyms if p[:10] in body]
    assert leaks == []
    # The same text does reach the people it is for, so the search above could have found it.
    hq = "\n".join(_texts(app, world, browser(world.hq.email)).values())
    auditor_b = browser(world.auditor_b.email).get(f"/audit/assignments/{world.reopened_assignment.id}").get_data(
        as_text=True)
    assert SECRET_COMMENT in hq
    assert SECRET_REOPEN in hq or SECRET_REOPEN in auditor_b


def test_raw_and_report_exports_are_for_hq_only(world: World, browser: Any) -> None:
    code = world.campaign.code
    urls = [f"/hq/campaigns/{code}/responses.csv", f"/hq/campaigns/{code}/report.csv",
            f"/hq/campaigns/{code}/report.xlsx"]
    others = {
        "anonymous": (browser(), {}),
        "auditor": (browser(world.auditor.email), {}),
        "manager": (browser(world.manager.email), {}),
        "api key": (browser(), {"Authorization": f"Bearer {world.api_key}"}),
    }
    events = _export_events()
    for who, (client, headers) in others.items():
        for url in urls:
            response = client.get(url, headers=headers)
            FIGURES["table: export refused to a non-HQ role"] += 1
            assert response.status_code in (302, 401, 403), (who, url, response.status_code)
            assert b"respondent_id" not in response.data and b"unit_code" not in response.data, (who, url)
    assert _export_events() == events, "a refused export was recorded as made"
    hq = browser(world.hq.email)
    raw = hq.get(urls[0])
    assert raw.status_code == 200 and raw.data.decode("utf-8-sig").startswith("response_id,unit_code")


def _export_events() -> list[tuple[str, str, dict[str, Any] | None]]:
    db.session.expire_all()
    rows = db.session.execute(
        sa.select(AuditEvent.action, AuditEvent.actor, AuditEvent.after)
        .where(AuditEvent.action.in_(("export", "backup"))).order_by(AuditEvent.id)
    ).all()
    db.session.rollback()
    return [tuple(row) for row in rows]


def test_every_export_is_in_the_audit_trail(world: World, browser: Any, runner: Any, tmp_path: Path) -> None:
    code = world.campaign.code
    hq = browser(world.hq.email)
    exports = [
        (f"/hq/campaigns/{code}/report.csv", "csv"),
        (f"/hq/campaigns/{code}/report.xlsx?lang=en", "xlsx"),
        (f"/hq/campaigns/{code}/report.pdf", "pdf"),
        (f"/hq/campaigns/{code}/responses.csv", "raw-csv"),
        (f"/hq/campaigns/{code}/responses.csv?source=cross&unit={world.units[1].code}", "raw-csv"),
    ]
    for url, kind in exports:
        before = _export_events()
        assert hq.get(url).status_code == 200, url
        added = _export_events()[len(before):]
        FIGURES["table: export checked in the audit trail"] += 1
        assert len(added) == 1, (url, added)
        action, actor, after = added[0]
        assert (action, actor) == ("export", world.hq.email) and after["export"] == kind and after["campaign"] == code
    assert hq.get(f"/hq/campaigns/{code}/responses.csv?source=bogus").status_code == 400
    before = _export_events()
    result = runner.invoke(args=["report", code, "--format", "csv", "--out", str(tmp_path / "r.csv")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["backup", str(tmp_path / "all.backup")])
    assert result.exit_code == 0, result.output
    added = _export_events()[len(before):]
    assert [(action, actor) for action, actor, _after in added] == [("export", "cli"), ("backup", "cli")]


def test_api_reads_are_in_the_audit_trail(world: World, browser: Any) -> None:
    client = browser()
    before = _export_events()
    headers = {"Authorization": f"Bearer {world.api_key}"}
    code = world.campaign.code
    assert client.get(f"/api/v1/campaigns/{code}/report", headers=headers).status_code == 200
    unit_code = world.units[1].code
    assert client.get(f"/api/v1/campaigns/{code}/units/{unit_code}", headers=headers).status_code == 200
    # A read that returns no data (unknown unit, no key) is not an export.
    assert client.get(f"/api/v1/campaigns/{code}/units/nowhere", headers=headers).status_code == 404
    assert client.get(f"/api/v1/campaigns/{code}/report").status_code == 401
    added = _export_events()[len(before):]
    assert [(action, actor[:4], after["export"], after.get("unit")) for action, actor, after in added] == [
        ("export", "api:", "api-report", None), ("export", "api:", "api-unit", unit_code)]
    for _action, actor, after in added:
        # The key is named by its prefix (never the whole key), as `flask users api-key list` shows it.
        assert after["campaign"] == code and actor == f"api:{after['key']}"
        assert 6 <= len(after["key"]) < len(world.api_key) and world.api_key.startswith(after["key"])
