"""Fixtures of the HQ set-up tests: a signed-in HQ browser, its CSRF token, and CSV builders."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import AuditEvent, Campaign, Response, Role, Unit
from tests.browser_fixtures import browser_page, live_server  # noqa: F401  (the browser tests use them)
from tests.crossscoring.conftest import csrf_from, login


@dataclass
class Browser:
    """A test client signed in as someone, with the CSRF token of its session."""

    client: Any
    csrf: str

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.client.post(url, data={**(data or {}), "csrf_token": self.csrf}, **kwargs)


@pytest.fixture
def sign_in(app: Any, make_user: Any) -> Any:
    """Factory: a browser signed in with a new account of ``role`` (and unit, for unit roles)."""

    def make(role: Role = Role.HQ, unit: Unit | None = None, email: str | None = None) -> Browser:
        email = email or f"{role}.{unit.code if unit else 'hq'}@evnnpc.vn"
        make_user(email, role, unit)
        client = app.test_client()
        assert login(client, email).status_code == 302
        # Every signed-in page carries the log-out form, hence the session's token.
        return Browser(client, csrf_from(client.get("/", follow_redirects=True).text))

    return make


@pytest.fixture
def hq(sign_in: Any) -> Browser:
    return sign_in(Role.HQ)


def campaign_by_code(code: str) -> Campaign | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(Campaign).where(Campaign.code == code))


def count(model: Any, *where: Any) -> int:
    db.session.expire_all()
    return int(db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0)


def responses(campaign: Campaign | None = None) -> int:
    return count(Response, *([Response.campaign_id == campaign.id] if campaign else []))


def events(entity: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.entity == entity).order_by(AuditEvent.id)))


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return out.getvalue().encode("utf-8")


def consultant_header(campaign: Campaign) -> list[str]:
    return ["unit_code", "respondent_id", "customer_group", *(item.code for item in campaign.questionnaire.items)]


def answers(campaign: Campaign, value: int = 8) -> list[int]:
    return [value for _item in campaign.questionnaire.items]
