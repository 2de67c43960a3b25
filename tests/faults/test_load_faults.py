"""Faults under load: gunicorn workers killed (SIGKILL) and PostgreSQL connections dropped while people submit.

Customers answer the survey page by page and auditors enter interviews through the form, all
at once against two real gunicorn workers on the loopback address. Meanwhile workers are
killed and every database connection is terminated, twice each. Clients retry what failed, the
way a person presses the button again (same link, same interview id). Afterwards:

* every submission that got a success answer is in the database, once;
* nothing is stored twice, however often it was sent;
* each stored response has its audit event, and the audit chain is intact;
* the server answers again without a restart (gunicorn replaced the workers, the pool
  reconnected through pool_pre_ping).

Bounded: a fixed number of submissions, a deadline, loopback only.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from bench.client import Browser, Reply
from bench.servers import start_gunicorn
from survey.extensions import db
from survey.models import AuditEvent, Invitation, Response, Role, Unit
from survey.services.assignments import create_assignments
from survey.services.audit import verify_chain
from survey.services.invitations import hash_token, issue_invitations
from tests.conftest import base_config

from .figures import FIGURES

pytestmark = [pytest.mark.slow, pytest.mark.postgresql_only]

PASSWORD = "correct horse 42"
CUSTOMERS = 40
AUDITORS = 4
INTERVIEWS_PER_AUDITOR = 10
CONCURRENCY = 16
#: The whole run stops by itself after this long, whatever happens.
DEADLINE_SECONDS = 150
#: Exceptions the server may log while its database connections are being terminated.
EXPECTED_ERRORS = {
    "psycopg.OperationalError",
    "sqlalchemy.exc.OperationalError",
    "sqlalchemy.exc.PendingRollbackError",
    "psycopg.errors.AdminShutdown",
    "sqlalchemy.exc.InterfaceError",
    "psycopg.InterfaceError",
}


@dataclass
class Tally:
    """What the clients saw."""

    acknowledged_links: set[str] = field(default_factory=set)
    acknowledged_interviews: set[str] = field(default_factory=set)
    #: Submissions the server had already stored when a retry arrived (the first answer was lost).
    stored_before_retry: int = 0
    attempted: int = 0
    retries: int = 0
    transport_errors: int = 0
    server_errors: int = 0
    unexpected: list[str] = field(default_factory=list)
    steps_done: int = 0


@dataclass
class Faults:
    worker_kills: int = 0
    connections_dropped: int = 0
    drop_rounds: int = 0
    log: list[str] = field(default_factory=list)


async def send(tally: Tally, call: Any) -> Reply | None:
    """One request; None when the connection broke (a killed worker) or the server failed (5xx)."""
    try:
        reply = await call()
    except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
        tally.transport_errors += 1
        return None
    if reply.status >= 500:
        tally.server_errors += 1
        return None
    return reply


async def pause(attempt: int) -> None:
    await asyncio.sleep(min(0.1 * 2 ** min(attempt, 4), 1.5) * (0.5 + random.random()))


async def customer(base: tuple[str, int], token: str, items: list[list[str]], tally: Tally, deadline: float) -> None:
    """Answer every page; after a failure open the link again, as a person does. Acknowledged on /thanks.

    The form token belongs to the browser's session, so it is read once and reused, page after page.
    """
    browser = Browser(*base)
    tally.attempted += 1
    number, csrf, attempt = 1, None, 0
    while number <= len(items) and time.monotonic() < deadline:
        if csrf is None:
            page = await send(tally, lambda: browser.get(f"/s/{token}/{number}"))
            if page is None:
                attempt += 1
                tally.retries += 1
                await pause(attempt)
                continue
            if page.status == 410 or (page.status == 302 and page.location.endswith("/thanks")):
                # An earlier send of the last page was stored, but its answer never arrived.
                tally.stored_before_retry += 1
                return
            if page.status == 302:
                number = int(page.location.rstrip("/").rsplit("/", 1)[-1])
                continue
            if page.status != 200:
                tally.unexpected.append(f"GET page {number}: {page.status}")
                return
            csrf = page.csrf_token()
        form = {"csrf_token": csrf, "_action": "next"}
        for item in items[number - 1]:
            form[item] = str(random.randint(5, 10))
        reply = await send(tally, lambda: browser.post_form(f"/s/{token}/{number}", form))
        if reply is None:
            attempt += 1
            tally.retries += 1
            csrf = None  # reopen the page: where the survey stands is the server's to say
            await pause(attempt)
            continue
        if reply.status == 410:
            tally.stored_before_retry += 1
            return
        if reply.status != 303:
            tally.unexpected.append(f"POST page {number}: {reply.status}")
            return
        attempt = 0
        tally.steps_done += 1
        if reply.location.endswith("/thanks"):
            tally.acknowledged_links.add(token)
            return
        number += 1


async def auditor(base: tuple[str, int], email: str, assignment_id: int, items: list[list[str]], tally: Tally,
                  deadline: float) -> None:
    """Sign in, then enter interviews through the form; a failed send is sent again with the same interview id."""
    browser = Browser(*base)
    entry = f"/audit/assignments/{assignment_id}/interviews/new"
    csrf: str | None = None
    done = attempt = 0
    interview_id, respondent = str(uuid.uuid4()), f"PA{uuid.uuid4().hex[:12].upper()}"
    tally.attempted += 1
    while done < INTERVIEWS_PER_AUDITOR and time.monotonic() < deadline:
        if csrf is None:
            page = await send(tally, lambda: browser.get("/login"))
            reply = page and await send(tally, lambda: browser.post_form(
                "/login", {"email": email, "password": PASSWORD, "csrf_token": page.csrf_token()}))
            entry_page = reply and reply.status == 302 and await send(tally, lambda: browser.get(entry))
            if not entry_page or entry_page.status != 200:
                if reply is not None and reply.status not in (302, 429):
                    tally.unexpected.append(f"login: {reply.status}")
                    return
                attempt += 1
                tally.retries += 1
                await pause(attempt)
                continue
            csrf = entry_page.csrf_token()
        form = {"csrf_token": csrf, "interview_id": interview_id, "respondent_id": respondent,
                "customer_group": random.choice(["household", "business"])}
        for dimension in items:
            for item in dimension:
                form[item] = str(random.randint(4, 10))
        reply = await send(tally, lambda: browser.post_form(entry, form))
        if reply is None:
            attempt += 1
            tally.retries += 1
            await pause(attempt)
            continue
        if reply.status == 302 and "/login" in reply.location:
            csrf = None  # the session is no longer accepted: sign in again, then send the same interview
            continue
        if reply.status != 303:
            tally.unexpected.append(f"interview: {reply.status} {reply.body[:200]!r}")
            return
        tally.acknowledged_interviews.add(interview_id)
        tally.steps_done += 1
        done += 1
        attempt = 0
        if done < INTERVIEWS_PER_AUDITOR:
            tally.attempted += 1
            interview_id, respondent = str(uuid.uuid4()), f"PA{uuid.uuid4().hex[:12].upper()}"


def drop_connections(url: str) -> int:
    """Terminate every other session on the test database, as a failover or a restarted server would."""
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return sum(1 for (terminated,) in rows if terminated)


async def chaos(server: Any, first_workers: list[int], url: str, tally: Tally, total_steps: int, faults: Faults,
                deadline: float, boot_seconds: float) -> None:
    """Kill a worker, drop the connections, kill the other worker, drop them again, as the load goes on.

    The second worker dies only once the first one's replacement has had the time the server
    took to boot: one worker down at a time, as when a process crashes, not a whole host.
    """
    plan = [(0.12, "kill"), (0.3, "drop"), (0.5, "kill"), (0.7, "drop")]
    last_kill = 0.0
    for fraction, fault in plan:
        while time.monotonic() < deadline and (
            tally.steps_done < fraction * total_steps
            or (fault == "kill" and time.monotonic() < last_kill + 1.5 * boot_seconds)
        ):
            await asyncio.sleep(0.05)
        if time.monotonic() >= deadline:
            return
        if fault == "kill":
            # The workers that have been serving since the start, one after the other (never one still booting).
            serving = [pid for pid in first_workers if pid in server.worker_pids()]
            if serving:
                victim = serving[0]
                os.kill(victim, signal.SIGKILL)
                last_kill = time.monotonic()
                faults.worker_kills += 1
                faults.log.append(f"{time.monotonic():.1f}: SIGKILL worker {victim} at {tally.steps_done}/{total_steps}")
        else:
            dropped = await asyncio.to_thread(drop_connections, url)
            faults.connections_dropped += dropped
            faults.drop_rounds += 1
            faults.log.append(f"{time.monotonic():.1f}: terminated {dropped} connections at {tally.steps_done}/{total_steps}")


@pytest.fixture
def postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("the fault tests run gunicorn workers on a shared PostgreSQL database: set TEST_DATABASE_URL")


def test_no_acknowledged_submission_is_lost_or_doubled(app: Any, postgresql_only: None, make_campaign: Any,
                                                       make_user: Any, tmp_path: Path) -> None:
    url = os.environ["TEST_DATABASE_URL"]
    campaign = make_campaign(code="faults-2017", units=AUDITORS)
    campaign_id = campaign.id
    items = [[item.code for item in d.items] for d in campaign.questionnaire.dimensions]
    units = list(db.session.scalars(sa.select(Unit).order_by(Unit.code)))
    assignments = {a.rater_unit_id: a.id for a in create_assignments(campaign, 1, 100, seed=3, actor="cli")}
    auditors = [(make_user(f"auditor.{u.code}@evnnpc.vn", Role.AUDITOR, unit=u).email, assignments[u.id]) for u in units]
    tokens = [issued.token for u in units for issued in issue_invitations(campaign, u, CUSTOMERS // len(units))]
    db.session.commit()
    config = base_config(app.config["SQLALCHEMY_DATABASE_URI"])
    env = {"DATABASE_URL": url, "SECRET_KEY": config["SECRET_KEY"], "PSEUDONYM_KEY": config["PSEUDONYM_KEY"],
           "SURVEY_ENV": "production", "SURVEY_INSTANCE_PATH": str(tmp_path), "GUNICORN_TIMEOUT": "30"}
    tally, faults = Tally(), Faults()
    total_steps = len(tokens) * len(items) + AUDITORS * INTERVIEWS_PER_AUDITOR
    started = time.monotonic()
    with start_gunicorn("wsgi:app", env, tmp_path / "gunicorn.log", workers=2, boot_timeout=180) as server:
        booted = time.monotonic()
        first_workers = sorted(server.worker_pids())
        deadline = time.monotonic() + DEADLINE_SECONDS
        base = ("127.0.0.1", server.port)

        async def run() -> None:
            gate = asyncio.Semaphore(CONCURRENCY)

            async def limited(job: Any) -> None:
                async with gate:
                    await job

            jobs = [customer(base, token, items, tally, deadline) for token in tokens]
            jobs += [auditor(base, email, assignment, items, tally, deadline) for email, assignment in auditors]
            random.shuffle(jobs)
            load = asyncio.gather(*(limited(job) for job in jobs))
            await asyncio.gather(load, chaos(server, first_workers, url, tally, total_steps, faults, deadline,
                                             booted - started))

        asyncio.run(run())
        # Recovery, without restarting anything: the same master answers, with new workers, on the same pool.
        probe = asyncio.run(Browser(*base).get("/login"))
        assert probe.status == 200
        assert server.process.poll() is None, "gunicorn's master died"
        replaced = set(first_workers) - set(server.worker_pids())
        log = server.log_path.read_text(errors="replace")
    elapsed, boot = time.monotonic() - started, booted - started

    FIGURES["load: submissions attempted (links + interviews)"] += tally.attempted
    FIGURES["load: submissions acknowledged"] += len(tally.acknowledged_links) + len(tally.acknowledged_interviews)
    FIGURES["load: stored before a retry (answer lost, resend refused as done)"] += tally.stored_before_retry
    FIGURES["load: requests retried by clients"] += tally.retries
    FIGURES["load: broken connections seen by clients"] += tally.transport_errors
    FIGURES["load: 5xx answers seen by clients"] += tally.server_errors
    FIGURES["faults: gunicorn workers killed (SIGKILL)"] += faults.worker_kills
    FIGURES["faults: PostgreSQL connections terminated"] += faults.connections_dropped
    FIGURES["faults: connection-drop rounds"] += faults.drop_rounds
    FIGURES["load: seconds under load"] += round(elapsed - boot)
    FIGURES["load: seconds to start gunicorn"] += round(boot)

    assert tally.unexpected == [], tally.unexpected[:10]
    assert faults.worker_kills == 2 and faults.drop_rounds == 2, faults.log
    assert replaced, "gunicorn did not replace the killed workers"
    # The only errors the server logged are the injected faults: connections that were terminated.
    errors = set(re.findall(r"^([\w.]+(?:Error|Exception)): ", log, re.MULTILINE))
    assert errors <= EXPECTED_ERRORS, log[-3000:]

    db.session.remove()  # this process's pooled connections were terminated too
    invitation_ids = {digest: id_ for digest, id_ in db.session.execute(sa.select(Invitation.token_hash, Invitation.id))}

    stored_links = set(db.session.scalars(
        sa.select(Response.invitation_id).where(Response.campaign_id == campaign_id, Response.invitation_id.is_not(None))))
    keys = db.session.execute(
        sa.select(Response.idempotency_key, sa.func.count()).where(Response.campaign_id == campaign_id)
        .group_by(Response.idempotency_key)
    ).all()
    per_key = dict(keys)
    stored = db.session.scalar(sa.select(sa.func.count()).select_from(Response).where(Response.campaign_id == campaign_id))
    FIGURES["load: submissions stored"] += int(stored)

    lost_links = [t for t in tally.acknowledged_links if invitation_ids[hash_token(t)] not in stored_links]
    lost_interviews = [k for k in tally.acknowledged_interviews if per_key.get(k) != 1]
    doubled = {k: n for k, n in per_key.items() if n != 1}
    FIGURES["load: acknowledged but missing"] += len(lost_links) + len(lost_interviews)
    FIGURES["load: stored twice"] += len(doubled)
    assert lost_links == [] and lost_interviews == [], (lost_links, lost_interviews)
    assert doubled == {}
    # Only what a client sent is stored: acknowledged, or stored just before its answer was lost.
    acknowledged = len(tally.acknowledged_links) + len(tally.acknowledged_interviews)
    assert acknowledged <= stored <= acknowledged + tally.stored_before_retry + tally.retries
    used = db.session.scalar(sa.select(sa.func.count()).select_from(Invitation)
                             .where(Invitation.campaign_id == campaign_id, Invitation.used_at.is_not(None)))
    assert used == len(stored_links), "a link marked used without its response, or the reverse"
    events = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                               .where(AuditEvent.entity == "response", AuditEvent.action == "create"))
    assert events == stored, "a response without its audit event, or an event without its response"
    chain = verify_chain()
    assert chain.ok, chain
    assert acknowledged >= 0.8 * tally.attempted, f"only {acknowledged} of {tally.attempted} went through"
