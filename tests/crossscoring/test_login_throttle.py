"""Login throttling (Flask-Limiter): in memory by default, in Redis when configured."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from survey.extensions import limiter
from survey.models import Role

from .conftest import csrf_from

DEFAULT_REDIS = "redis://127.0.0.1:6379/5"


def redis_url() -> str:
    """TEST_REDIS_URL, which must work when set; otherwise the local Redis, skipped with the reason if absent."""
    import redis

    explicit = os.environ.get("TEST_REDIS_URL")
    url = explicit or DEFAULT_REDIS
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if explicit:
            pytest.fail(f"TEST_REDIS_URL={explicit} is set but Redis does not answer: {exc}")
        pytest.skip(f"Redis is not reachable at {url} ({exc}); set TEST_REDIS_URL to run the shared-storage test")
    return url


@pytest.fixture(params=["memory", "redis"])
def throttled_app(request: pytest.FixtureRequest, app: Any, second_app: Any) -> Iterator[Any]:
    """An app on the test database whose limiter uses the storage under test."""
    if request.param == "memory":
        yield app
        return
    url = redis_url()
    redis_app = second_app(RATELIMIT_STORAGE_URI=url)
    # Requests push their own app context (sharing the fixture's would share flask.g between clients).
    limiter.reset()
    yield redis_app
    limiter.reset()


def attempt(client: Any, token: str, email: str, password: str) -> Any:
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_eleventh_failed_login_in_a_minute_is_refused(throttled_app, make_user):
    make_user("hq@evnnpc.vn", Role.HQ)
    client = throttled_app.test_client()
    token = csrf_from(client.get("/login").text)
    for number in range(10):
        response = attempt(client, token, "hq@evnnpc.vn", f"wrong guess {number}")
        assert response.status_code == 401, number
    refused = attempt(client, token, "hq@evnnpc.vn", "wrong guess 10")
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert "Quá nhiều" in refused.text or "Too many" in refused.text  # the friendly 429 page, not a stack trace
    # While throttled even the right password is refused, and no session is opened.
    right = attempt(client, token, "hq@evnnpc.vn", "correct horse 42")
    assert right.status_code == 429
    assert client.get("/hq/").status_code == 302


def test_throttle_is_per_account_too(throttled_app):
    """Guessing one account's password from changing addresses is slowed as well."""
    # An unknown account counts the same, and needs no password hashing: the test stays well inside the minute.
    started = time.monotonic()
    codes = []
    for number in range(11):
        client = throttled_app.test_client()
        address = {"REMOTE_ADDR": f"10.0.0.{number + 1}"}
        token = csrf_from(client.get("/login", environ_base=address).text)
        codes.append(
            client.post("/login", data={"email": "nobody@evnnpc.vn", "password": "nope nope 1", "csrf_token": token},
                        environ_base=address).status_code
        )
    assert codes[:10] == [401] * 10 and codes[10] == 429, f"{codes} in {time.monotonic() - started:.0f} s"


def test_redis_holds_the_counters(app, second_app):
    """With Redis configured the counters live in Redis, so every worker and host shares them."""
    import redis

    url = redis_url()
    redis_app = second_app(RATELIMIT_STORAGE_URI=url)
    limiter.reset()
    try:
        client = redis_app.test_client()
        token = csrf_from(client.get("/login").text)
        attempt(client, token, "nobody@evnnpc.vn", "wrong password 1")
        keys = redis.Redis.from_url(url).keys("LIMITS*")
        assert any(b"login:nobody@evnnpc.vn" in key for key in keys), keys
    finally:
        limiter.reset()


def test_only_the_limited_views_check_limits_without_app_wide_ones(app, make_user):
    """No default, application or meta limit is set: Flask-Limiter's app-wide check is not registered (each
    request would only look up limits that do not exist), while the sign-in form still counts its own."""
    assert limiter._check_request_limit not in app.before_request_funcs[None]
    make_user("hq@evnnpc.vn", Role.HQ)
    client = app.test_client()
    token = csrf_from(client.get("/login").text)
    codes = [attempt(client, token, "hq@evnnpc.vn", f"wrong guess {number}").status_code for number in range(11)]
    assert codes == [401] * 10 + [429]
    assert "X-RateLimit-Limit" in attempt(client, token, "hq@evnnpc.vn", "wrong guess").headers


def test_an_app_wide_limit_keeps_the_app_wide_check(second_app):
    """With a default limit configured, every request is counted against it again (survey pages excepted)."""
    limited = second_app(RATELIMIT_DEFAULT="3 per minute")
    limiter.reset()
    try:
        assert limiter._check_request_limit in limited.before_request_funcs[None]
        client = limited.test_client()
        codes = [client.get("/login").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        survey_codes = {client.get(f"/s/no-such-link-{number}").status_code for number in range(5)}
        assert survey_codes == {404}
    finally:
        limiter.reset()
