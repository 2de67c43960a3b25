"""Fixtures for the scale tests: two real gunicorn instances on one PostgreSQL and one Redis, and HTTP helpers.

The instances are what two hosts behind a load balancer would be: separate processes on
separate loopback ports, sharing only the database, Redis and the keys in their environment.
They are started once per module and always stopped (the fixture's finalizer ends each
server's whole process group).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.client import Browser
from bench.servers import Server, start_gunicorn
from tests.conftest import base_config, postgres_url

REDIS_HINT = "two-instance tests need TEST_REDIS_URL, e.g. redis://127.0.0.1:6379/7"
PASSWORD = "correct horse 42"


@dataclass
class Instances:
    """Two application hosts: ``a`` and ``b``."""

    a: Server
    b: Server

    def browser(self) -> Browser:
        """A browser (one cookie jar) that can talk to either host, as one behind a load balancer does."""
        return Browser("127.0.0.1", self.a.port)


def on(browser: Browser, server: Server) -> Browser:
    """The same browser (same cookies) pointed at another host."""
    browser.port = server.port
    return browser


def run(coroutine: Any) -> Any:
    """Run one coroutine to its end (the tests are synchronous)."""
    return asyncio.run(coroutine)


@pytest.fixture(scope="module")
def redis_url() -> str:
    """TEST_REDIS_URL, or a visible skip."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip(REDIS_HINT)
    return url


@pytest.fixture(scope="module")
def instances(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instances]:
    """Two gunicorn instances of the app on the test PostgreSQL database and Redis, with the same keys."""
    if not database_url.startswith("postgresql"):
        pytest.skip("two-instance tests run on PostgreSQL only")
    url = os.environ["TEST_DATABASE_URL"]
    assert postgres_url() is not None
    config = base_config(database_url)
    instance = tmp_path_factory.mktemp("instance")
    # A key prefix of this run's own, so counts left in a shared Redis by earlier runs never interfere.
    (instance / "config.py").write_text(f'RATELIMIT_KEY_PREFIX = "scale-test-{uuid.uuid4().hex[:12]}"\n')
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": config["SECRET_KEY"],
        "PSEUDONYM_KEY": config["PSEUDONYM_KEY"],
        "SURVEY_ENV": "production",
        "SURVEY_INSTANCE_PATH": str(instance),
        "SURVEY_BASE_URL": config["SURVEY_BASE_URL"],
        "GUNICORN_TIMEOUT": "60",
    }
    logs = tmp_path_factory.mktemp("logs")
    a = start_gunicorn("wsgi:app", env, Path(logs / "a.log"), workers=1, boot_timeout=180)
    try:
        b = start_gunicorn("wsgi:app", env, Path(logs / "b.log"), workers=1, boot_timeout=180)
    except BaseException:
        a.stop()
        raise
    try:
        yield Instances(a, b)
    finally:
        a.stop()
        b.stop()
