"""Sessions, secrets and size limits: cookie flags, the staff idle timeout, production secrets, 413 pages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from itsdangerous import TimestampSigner

from survey import create_app, web
from survey.extensions import db
from survey.models import Response
from tests.conftest import base_config

from .helpers import FIGURES, World, csrf_from, fingerprint, changed_tables, login

ROOT = Path(__file__).resolve().parents[2]


def session_cookie(response: Any) -> str:
    cookies = [value for value in response.headers.getlist("Set-Cookie") if value.startswith("session=")]
    assert cookies, "no session cookie set"
    return cookies[-1]


def test_session_cookie_is_httponly_and_samesite_lax(world: World, browser: Any) -> None:
    client = browser()
    page = client.get("/login")
    response = client.post("/login", data={"email": world.hq.email, "password": "correct horse 42",
                                           "csrf_token": csrf_from(page.get_data(as_text=True))})
    cookie = session_cookie(response)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development serves plain HTTP on 127.0.0.1


def test_production_cookies_are_secure_and_https_is_pinned(world: World, database_url: str) -> None:
    production = create_app({**base_config(database_url), "SURVEY_ENV": "production"})
    client = production.test_client()
    try:
        page = client.get("/login")
        assert "max-age=" in page.headers.get("Strict-Transport-Security", "")
        response = client.post("/login", data={"email": world.hq.email, "password": "correct horse 42",
                                               "csrf_token": csrf_from(page.get_data(as_text=True))})
    finally:
        with production.app_context():
            db.engine.dispose()  # a second app's pool: close its connections now, not at garbage collection
    assert response.status_code == 302
    cookie = session_cookie(response)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def _age_session(client: Any, minutes: float) -> None:
    """Pretend the signed-in person's last request was ``minutes`` ago."""
    with client.session_transaction() as session:
        assert web.LAST_SEEN in session, "the idle clock is not running for a signed-in person"
        session[web.LAST_SEEN] -= int(minutes * 60)


def test_staff_are_signed_out_after_thirty_idle_minutes(app: Any, world: World, browser: Any) -> None:
    assert app.config["STAFF_IDLE_MINUTES"] == 30
    client = browser(world.hq.email)
    assert client.get("/hq/").status_code == 200
    _age_session(client, 29)
    assert client.get("/hq/").status_code == 200, "signed out before 30 minutes"
    _age_session(client, 29)
    assert client.get("/hq/").status_code == 200, "each request must restart the idle clock"
    _age_session(client, 31)
    response = client.get("/hq/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get("/hq/").status_code == 302, "the session must be gone, not just one request refused"
    FIGURES["table: idle-timeout step"] += 5


def test_idle_auditor_queue_gets_401_and_nothing_is_stored(world: World, browser: Any) -> None:
    client = browser(world.auditor.email)
    page = client.get(f"/audit/assignments/{world.open_assignment.id}/interviews/new")
    token = csrf_from(page.get_data(as_text=True))
    _age_session(client, 45)
    before = fingerprint()
    response = client.post(
        f"/audit/assignments/{world.open_assignment.id}/interviews.json",
        json={"interview_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "customer_group": "household",
              "respondent_id": "PA01HH0055001", "answers": {code: 7 for code in world.item_codes}},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 401 and response.is_json
    assert changed_tables(before, fingerprint()) == []


def test_customers_have_no_idle_timeout(world: World, browser: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A customer may leave a survey page open for hours and still send it (the staff timeout is not theirs)."""
    client = browser()
    page = client.get(f"/s/{world.token}/1")
    token = csrf_from(page.get_data(as_text=True))
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) + 5 * 3600)
    items = {item.code: "8" for item in world.campaign.questionnaire.dimensions[0].items}
    response = client.post(f"/s/{world.token}/1", data={**items, "_action": "save", "csrf_token": token})
    assert response.status_code == 303


def test_production_refuses_missing_or_placeholder_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SURVEY_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SURVEY_ENV", "production")
    # A development install left its generated key in instance/: production must not fall back to it.
    (tmp_path / "secret_key.txt").write_text("a" * 64)
    (tmp_path / "pseudonym_key.txt").write_text("b" * 64)
    with pytest.raises(RuntimeError, match="SECRET_KEY is not set"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    monkeypatch.setenv("SECRET_KEY", "0123456789abcdef" * 4)
    with pytest.raises(RuntimeError, match="PSEUDONYM_KEY is not set"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    for placeholder in ("...", "change-me", "secret", " Changeme "):
        monkeypatch.setenv("PSEUDONYM_KEY", placeholder)
        with pytest.raises(RuntimeError, match="PSEUDONYM_KEY is a placeholder"):
            create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
        FIGURES["table: refused production secret"] += 1
    monkeypatch.setenv("PSEUDONYM_KEY", "fedcba9876543210" * 4)
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SECRET_KEY"] == "0123456789abcdef" * 4


def test_production_secrets_may_come_from_instance_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SURVEY_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SURVEY_ENV", "production")
    (tmp_path / "config.py").write_text('SECRET_KEY = "s" * 64\nPSEUDONYM_KEY = "p" * 64\n')
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SECRET_KEY"] == "s" * 64 and app.config["PSEUDONYM_KEY"] == "p" * 64


def test_no_secret_is_written_in_the_code() -> None:
    """Secrets come from the environment or instance/: no module assigns a literal one."""
    pattern = re.compile(r"""(SECRET_KEY|PSEUDONYM_KEY|password|api_key)\s*=\s*["'][^"']{6,}["']""", re.IGNORECASE)
    offenders = []
    for path in sorted((ROOT / "survey").rglob("*.py")):
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            if pattern.search(line) and "demo" not in path.name:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_an_upload_above_the_limit_gets_the_413_page(app: Any, world: World, browser: Any) -> None:
    client = browser(world.auditor.email)
    url = f"/audit/assignments/{world.open_assignment.id}/upload"
    token = csrf_from(client.get(url).get_data(as_text=True))
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit <= 16 * 1024 * 1024
    before = fingerprint()
    # The multipart body is built here: the test client would spool a large one to a file it never closes.
    boundary = "----upload-limit-test"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\nrater_unit,ratee_unit\n"
    ).encode() + b"x" * limit + f"\r\n--{boundary}--\r\n".encode()
    response = client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 413
    assert "text/html" in response.content_type and "<h1>" in response.get_data(as_text=True)
    assert changed_tables(before, fingerprint()) == []


def test_a_form_above_the_limit_gets_413_and_nothing_is_saved(app: Any, world: World, browser: Any) -> None:
    client = browser()
    url = f"/s/{world.token}/1"
    token = csrf_from(client.get(url).get_data(as_text=True))
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Response))
    padding = "x" * app.config["MAX_FORM_MEMORY_SIZE"]
    response = client.post(url, data={"csrf_token": token, "_action": "save", "padding": padding})
    assert response.status_code == 413
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Response)) == before


def test_a_json_body_above_the_limit_gets_413(app: Any, world: World, browser: Any) -> None:
    client = browser(world.auditor.email)
    token = csrf_from(client.get(f"/audit/assignments/{world.open_assignment.id}/interviews/new").get_data(as_text=True))
    before = fingerprint()
    body = b'{"x": "' + b"y" * app.config["MAX_CONTENT_LENGTH"] + b'"}'
    response = client.post(f"/audit/assignments/{world.open_assignment.id}/interviews.json", data=body,
                           content_type="application/json", headers={"X-CSRFToken": token})
    assert response.status_code == 413 and response.is_json
    assert changed_tables(before, fingerprint()) == []
