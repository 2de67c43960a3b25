"""Fixtures of the security and bad-input tests: the attacked world, browsers per role, and the figures.

The number of cases each property and table tried is printed at the end of the run (whatever
``-s`` says), so the figures in docs/reliability.md can be checked against any run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from survey.extensions import db

from .helpers import FIGURES, World, build_world, login


#: Per database: every table's rows right after the world was first built, and how to find the world in them.
SAVED_WORLDS: dict[str, tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]] = {}


@pytest.fixture
def world(app: Any, database_url: str, make_campaign: Callable[..., Any], make_invitation: Callable[..., Any]) -> World:
    """Four units, a campaign with assignments in every state, responses of both programmes, four accounts.

    Built through the services once per database, then copied back row for row before each test
    (building it takes seconds, mostly scrypt and the services' checks; copying takes milliseconds).
    """
    saved = SAVED_WORLDS.get(database_url)
    if saved is None:
        built = build_world(make_campaign, make_invitation)
        SAVED_WORLDS[database_url] = (_dump_tables(), _world_keys(built))
        return built
    _load_tables(saved[0])
    return _world_from_keys(saved[1])


def _dump_tables() -> dict[str, list[dict[str, Any]]]:
    db.session.expire_all()
    dump = {table.name: [dict(row) for row in db.session.execute(sa.select(table)).mappings()]
            for table in db.metadata.sorted_tables}
    db.session.rollback()
    return dump


def _load_tables(dump: dict[str, list[dict[str, Any]]]) -> None:
    for table in db.metadata.sorted_tables:
        if dump[table.name]:
            db.session.execute(table.insert(), dump[table.name])
    if db.engine.dialect.name == "postgresql":
        # Rows came with their ids: move each id sequence past them, as the original inserts did.
        for table in db.metadata.sorted_tables:
            if "id" in table.columns and dump[table.name]:
                db.session.execute(sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), (SELECT MAX(id) FROM {table.name}))"))
    db.session.commit()


def _world_keys(world: World) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for name, value in vars(world).items():
        if isinstance(value, list):
            keys[name] = (type(value[0]), [item.id for item in value])
        elif isinstance(value, str):
            keys[name] = value
        else:
            keys[name] = (type(value), value.id)
    return keys


def _world_from_keys(keys: dict[str, Any]) -> World:
    values: dict[str, Any] = {}
    for name, key in keys.items():
        if isinstance(key, str):
            values[name] = key
        elif isinstance(key[1], list):
            values[name] = [db.session.get(key[0], id_) for id_ in key[1]]
        else:
            values[name] = db.session.get(key[0], key[1])
    return World(**values)


@pytest.fixture
def browser(app: Any) -> Callable[..., Any]:
    """Factory: a fresh browser (own cookies), signed in as ``email`` when one is given.

    Each browser gets its own client address, so the login throttle (per address) does not
    mistake a test's many browsers for one password guesser.
    """
    made = [0]

    def make(email: str | None = None) -> Any:
        made[0] += 1
        client = buffered_client_class(app)(app, app.response_class, use_cookies=True)
        client.environ_base["REMOTE_ADDR"] = f"127.0.{made[0] // 250}.{made[0] % 250 + 1}"
        if email is not None:
            login(client, email)
        return client

    return make


def buffered_client_class(app: Any) -> type:
    """The app's test client, reading each streamed body inside the request's own context.

    tests/conftest.py runs every request in a fresh context; a streamed download (the raw
    export) would otherwise be read after that context is gone.
    """
    base = app.test_client_class

    def open(self: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("buffered", True)
        return base.open(self, *args, **kwargs)

    return type("BufferedClient", (base,), {"open": open})


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print how many cases the bad-input properties and the route tables tried."""
    if not FIGURES:
        return
    terminalreporter.section("bad input and security: cases tried")
    fuzzed = sum(count for name, count in FIGURES.items() if name.startswith("fuzz:"))
    for name, count in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{count:>8,}  {name}")
    terminalreporter.write_line(f"{fuzzed:>8,}  generated inputs in total (hypothesis), none answered with a 500")


@pytest.fixture
def cached_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build each report, file and chart once per test: route tables call them hundreds of times.

    The first call is the real one; the parameter handling around it, which the tables attack,
    runs on every request. Only for tests whose requests do not change the data.
    """
    from survey import charts, exports
    from survey.services import reports

    cache: dict[Any, Any] = {}

    def remember(name: str, real: Callable[..., Any], key: Callable[..., Any]) -> Callable[..., Any]:
        def cached(*args: Any) -> Any:
            k = (name, *key(*args))
            if k not in cache:
                cache[k] = real(*args)
            return cache[k]

        return cached

    monkeypatch.setattr(reports, "build_report", remember("build", reports.build_report, lambda c: (c.id,)))
    monkeypatch.setattr(exports, "write_report",
                        remember("write", exports.write_report, lambda r, fmt, lang="vi": (r.campaign_id, fmt, lang)))
    monkeypatch.setattr(charts, "chart", remember("chart", charts.chart,
                                                  lambda r, name, lang, fmt: (r.campaign_id, name, lang, fmt)))


@pytest.fixture
def signed_in(world: World, browser: Callable[..., Any]) -> dict[str, tuple[Any, str]]:
    """One signed-in browser per staff role and its CSRF token, for properties that post many times.

    (Signing in for every generated case would trip the login throttle, and scrypt is slow on purpose.)
    """
    from .helpers import csrf_from, token_page

    clients = {}
    for role, email in (("hq", world.hq.email), ("auditor", world.auditor.email), ("manager", world.manager.email)):
        client = browser(email)
        clients[role] = (client, csrf_from(client.get(token_page(world, role)).get_data(as_text=True)))
    return clients
