"""Generated query strings: the JSON API, the raw-export filters, the report's sorting, HQ's review filters.

Never a 500; a refusal says why (JSON for the API); an export is recorded exactly when it is
delivered, and contains only the rows its filters ask for.
"""

from __future__ import annotations

import csv
import io
import re
import urllib.parse
from typing import Any

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from survey.extensions import db
from survey.models import AuditEvent

from .helpers import FIGURES, World, changed_tables, fingerprint, says_what_is_wrong
from .strategies import fuzz_settings, junk_text


def query(params: dict[str, str]) -> str:
    return urllib.parse.urlencode(params)


def parameters(names: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[dict[str, str]]:
    """Some of the known parameters, valid or junk, and maybe an unknown one."""
    return st.fixed_dictionaries({}, optional={name: st.one_of(valid, junk_text) for name, valid in names.items()}) \
        .flatmap(lambda known: st.dictionaries(junk_text, junk_text, max_size=1).map(lambda extra: {**extra, **known}))


def _exports() -> int:
    db.session.expire_all()
    count = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == "export"))
    db.session.rollback()
    return int(count or 0)


@fuzz_settings(100)
@given(data=st.data())
def test_api_junk(world: World, browser: Any, cached_reports: Any, data: st.DataObject) -> None:
    FIGURES["fuzz: JSON API paths, query parameters and keys"] += 1
    code = data.draw(st.one_of(st.just(world.campaign.code), junk_text), label="code")
    unit = data.draw(st.one_of(st.sampled_from([u.code for u in world.units]), junk_text), label="unit")
    path = data.draw(st.sampled_from([f"/api/v1/campaigns/{urllib.parse.quote(code, safe='')}/report",
                                      f"/api/v1/campaigns/{urllib.parse.quote(code, safe='')}/units/"
                                      f"{urllib.parse.quote(unit, safe='')}"]), label="path")
    params = data.draw(parameters({"lang": st.sampled_from(["vi", "en"])}), label="params")
    # (A header value cannot hold a line break: the HTTP client itself refuses to send one.)
    key = data.draw(st.one_of(st.just(f"Bearer {world.api_key}"), junk_text.map(lambda t: re.sub(r"[\r\n]", "", t)),
                              st.just(f"Bearer {world.api_key}x"), st.just(world.api_key)), label="authorization")
    before = fingerprint()
    response = browser().get(f"{path}?{query(params)}", headers={"Authorization": key})
    assert response.status_code in (200, 308, 400, 401, 404, 405), (path, params, response.status_code)
    if response.status_code != 308:  # "a//b" (a code with a slash) is sent to "a/b" first
        assert response.is_json and says_what_is_wrong(response) == (response.status_code >= 400)
    if key != f"Bearer {world.api_key}":
        # 404 and 400 come before the key check: a path the router does not know, a NUL in the query.
        assert response.status_code in (308, 400, 401, 404)
    assert changed_tables(before, fingerprint()) == []


@fuzz_settings(100)
@given(params=parameters({"unit": st.sampled_from(["bac-giang", "bac-kan", "lao-cai", ""]),
                          "source": st.sampled_from(["consultant", "cross", "CROSS"]),
                          "review_state": st.sampled_from(["received", "has_issues", "approved", "rejected"]),
                          "lang": st.sampled_from(["vi", "en"])}))
def test_raw_export_filter_junk(world: World, signed_in: Any, params: dict[str, str]) -> None:
    FIGURES["fuzz: raw-export filters"] += 1
    client, _csrf = signed_in["hq"]
    before, exports = fingerprint(), _exports()
    response = client.get(f"/hq/campaigns/{world.campaign.code}/responses.csv?{query(params)}")
    assert response.status_code in (200, 400), (params, response.status_code)
    assert changed_tables(before, fingerprint()) == []
    if response.status_code == 400:
        assert says_what_is_wrong(response) and _exports() == exports
        return
    assert _exports() == exports + 1, "a delivered export must be in the audit trail"
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    for key, column in (("unit", "unit_code"), ("source", "source"), ("review_state", "review_state")):
        wanted = params.get(key, "").strip()
        if wanted:
            assert {row[column] for row in rows} <= {wanted}, (params, key)


@fuzz_settings(100)
@given(params=parameters({"sort": st.sampled_from(["rank", "unit_code", "status", "p_value", "reason"]),
                          "dir": st.sampled_from(["asc", "desc"]), "lang": st.sampled_from(["vi", "en"])}))
def test_report_sorting_junk(world: World, signed_in: Any, cached_reports: Any, params: dict[str, str]) -> None:
    FIGURES["fuzz: report page sorting"] += 1
    client, _csrf = signed_in["hq"]
    response = client.get(f"/hq/campaigns/{world.campaign.code}/report?{query(params)}")
    assert response.status_code in (200, 400), (params, response.status_code)
    if response.status_code == 400:
        assert says_what_is_wrong(response)


@fuzz_settings(100)
@given(params=parameters({"assignment": st.integers(-1, 10**12).map(str), "unit": st.sampled_from(["bac-kan", "x"]),
                          "rater": st.sampled_from(["bac-giang", "x"]), "page": st.integers(-5, 10**12).map(str),
                          "state": st.sampled_from(["received", "has_issues", "approved", "rejected", "x"])}))
def test_review_filters_junk(world: World, signed_in: Any, params: dict[str, str]) -> None:
    FIGURES["fuzz: HQ review filters"] += 1
    client, _csrf = signed_in["hq"]
    response = client.get(f"/hq/campaigns/{world.campaign.code}/review?{query(params)}")
    assert response.status_code in (200, 400, 404), (params, response.status_code)


@fuzz_settings(60)
@given(campaign=junk_text, unit=st.one_of(st.sampled_from(["bac-kan", "bac-giang"]), junk_text))
def test_unit_page_junk(world: World, signed_in: Any, cached_reports: Any, campaign: str, unit: str) -> None:
    FIGURES["fuzz: unit page (manager)"] += 1
    client, _csrf = signed_in["manager"]
    response = client.get(f"/unit/{urllib.parse.quote(unit, safe='')}?{query({'campaign': campaign})}")
    assert response.status_code in (200, 302, 308, 400, 403, 404), (unit, campaign, response.status_code)

