"""Customers answering the survey through HTTP, against gunicorn and PostgreSQL, beside the ceiling.

Three measurements, each at every concurrency level:

* **ceiling** — the bare endpoint of bench/ceiling.py: one POST, one row comparable to a response
  (and, for comparison, the minimal four-column row the ceiling stored until 28 November 2026);
* **submit** — the request that stores a response: customers who have answered every page
  but the last (their draft is saved, their page open with its CSRF token) send it. The two
  servers run side by side and the ceiling and the submissions take turns in ROUNDS rounds, so
  a change in the (shared) machine's speed during the run weighs on both alike;
* **survey** — customers completing the whole survey as a browser does: the introduction,
  each page opened (GET) and answered (POST, CSRF included, 303 to the next), the thanks page.

Loops are bounded by a number of jobs and a time limit; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from . import datasets
from .ceiling import create_tables
from .client import Browser
from .load import LoadResult, Recorder, closed_loop, combined
from .servers import Server, database_cpu_seconds, start_gunicorn

#: Requests sent to each fresh server before measuring, so every worker has loaded the app.
WARM_UP = 60
#: The ceiling and the submissions of one concurrency level take turns this many times (a multiple of 3:
#: the order of the three measurements turns round from one turn to the next).
ROUNDS = 6


@dataclass(frozen=True)
class SurveyLoadSettings:
    concurrency: tuple[int, ...] = (50, 200)
    #: Submissions (and ceiling inserts) per concurrency level.
    submits: int = 3000
    #: Whole surveys per concurrency level.
    surveys: int = 600
    #: No measured phase runs longer than this, whatever is left.
    time_limit: float = 120.0
    workers: int = 2


@dataclass(frozen=True)
class SurveyLoadResults:
    ceiling: dict[int, LoadResult]
    #: The same inserts of the minimal row (POST /insert-minimal), in the same rounds.
    ceiling_minimal: dict[int, LoadResult]
    submit: dict[int, LoadResult]
    survey: dict[int, LoadResult]
    stored_ok: bool
    stored_message: str


@dataclass
class Customer:
    """A customer with an open link; after preparation, the browser and the last page's hidden fields."""

    token: str
    answers: dict[str, str]
    browser: Browser | None = None
    fields: dict[str, str] = field(default_factory=dict)


def random_answers(rng: random.Random, pages: Sequence[Sequence[str]]) -> dict[str, str]:
    """A form's worth of answers: 1..10, now and then Not applicable."""
    return {code: "na" if rng.random() < 0.04 else str(rng.randint(4, 10)) for page in pages for code in page}


def issue_links(url: str, count: int) -> list[str]:
    """``count`` survey links of the benchmark campaign, spread over the 27 units."""
    app = datasets.make_app(url)
    tokens: list[str] = []
    with app.app_context():
        from survey.extensions import db
        from survey.models import Campaign, CustomerGroup, Unit
        from survey.services.invitations import issue_invitations

        campaign = db.session.scalar(sa.select(Campaign).where(Campaign.code == datasets.CAMPAIGN))
        units = list(db.session.scalars(sa.select(Unit).order_by(Unit.code)))
        share, rest = divmod(count, len(units))
        for position, unit in enumerate(units):
            n = share + (1 if position < rest else 0)
            if n:
                tokens += [i.token for i in issue_invitations(campaign, unit, n, CustomerGroup.HOUSEHOLD)]
        db.session.commit()
        db.engine.dispose()
    return tokens


def save_drafts(url: str, customers: Sequence[Customer], pages: Sequence[Sequence[str]]) -> None:
    """Store every page but the last as the customers' saved drafts (as if they had answered them)."""
    app = datasets.make_app(url)
    with app.app_context():
        from survey.extensions import db
        from survey.models import Invitation
        from survey.services.invitations import hash_token

        earlier = [code for page in pages[:-1] for code in page]
        rows = [
            {"h": hash_token(c.token),
             "d": {k: None if c.answers[k] == "na" else int(c.answers[k]) for k in earlier}}
            for c in customers
        ]
        table = Invitation.__table__
        db.session.connection().execute(
            sa.update(table).where(table.c.token_hash == sa.bindparam("h")).values(
                draft_answers=sa.bindparam("d", type_=table.c.draft_answers.type), draft_page=len(pages)
            ),
            rows,
        )
        db.session.commit()
        db.engine.dispose()


def stored_responses(url: str) -> int:
    """Responses stored in the benchmark campaign."""
    engine = sa.create_engine(datasets.sqlalchemy_url(url))
    with engine.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM response")).scalar_one()
    engine.dispose()
    return int(count)


async def _warm_up(server: Server, path: str) -> None:
    async def ping(_: int, recorder: Recorder) -> None:
        await Browser("127.0.0.1", server.port).get(path)

    await closed_loop(range(WARM_UP), ping, concurrency=4, time_limit=60)


async def _ceiling_phase(server: Server, customers: Sequence[Customer], concurrency: int,
                         time_limit: float, path: str = "/insert") -> LoadResult:
    async def insert(customer: Customer, recorder: Recorder) -> None:
        reply = await Browser("127.0.0.1", server.port).post_form(path, customer.answers)
        if reply.status != 201:
            raise RuntimeError(f"ceiling answered {reply.status}")
        recorder.add("insert", reply.seconds)

    return await closed_loop(customers, insert, concurrency=concurrency, time_limit=time_limit)


async def _open_last_pages(server: Server, customers: Sequence[Customer], last: int) -> None:
    """Preparation (not measured): each customer opens the last page, getting the browser cookie and the form's hidden fields."""
    async def open_page(customer: Customer, recorder: Recorder) -> None:
        customer.browser = Browser("127.0.0.1", server.port)
        reply = await customer.browser.get(f"/s/{customer.token}/{last}")
        if reply.status != 200:
            raise RuntimeError(f"last page answered {reply.status}")
        customer.fields = reply.survey_fields()

    result = await closed_loop(customers, open_page, concurrency=8, time_limit=600)
    if result.failed:
        raise RuntimeError(f"could not open {result.failed} last pages: {dict(result.recorder.errors)}")


async def _submit_phase(customers: Sequence[Customer], pages: Sequence[Sequence[str]], concurrency: int,
                        time_limit: float) -> LoadResult:
    last = len(pages)

    async def submit(customer: Customer, recorder: Recorder) -> None:
        assert customer.browser is not None
        data = {**customer.fields, "_action": "next", **{c: customer.answers[c] for c in pages[-1]}}
        reply = await customer.browser.post_form(f"/s/{customer.token}/{last}", data)
        if reply.status != 303 or not reply.location.endswith("/thanks"):
            raise RuntimeError(f"submit answered {reply.status} → {reply.location[-40:]}")
        recorder.add("submit", reply.seconds)

    return await closed_loop(customers, submit, concurrency=concurrency, time_limit=time_limit)


async def complete_survey(browser: Browser, token: str, answers: dict[str, str], pages: Sequence[Sequence[str]],
                          recorder: Recorder) -> None:
    """Everything a customer's browser sends, from opening the link to the thanks page."""
    reply = await browser.get(f"/s/{token}")
    if reply.status != 200:
        raise RuntimeError(f"intro answered {reply.status}")
    recorder.add("intro", reply.seconds)
    for number, codes in enumerate(pages, start=1):
        page = await browser.get(f"/s/{token}/{number}")
        if page.status != 200:
            raise RuntimeError(f"page {number} answered {page.status}")
        recorder.add("page", page.seconds)
        data = {**page.survey_fields(), "_action": "next", **{c: answers[c] for c in codes}}
        sent = await browser.post_form(f"/s/{token}/{number}", data)
        expected = "/thanks" if number == len(pages) else f"/{number + 1}"
        if sent.status != 303 or not sent.location.endswith(expected):
            raise RuntimeError(f"page {number} POST answered {sent.status} → {sent.location[-40:]}")
        recorder.add("submit" if number == len(pages) else "answer", sent.seconds)
    thanks = await browser.get(f"/s/{token}/thanks")
    if thanks.status != 200:
        raise RuntimeError(f"thanks answered {thanks.status}")
    recorder.add("thanks", thanks.seconds)


async def _survey_phase(server: Server, customers: Sequence[Customer], pages: Sequence[Sequence[str]],
                        concurrency: int, time_limit: float) -> LoadResult:
    async def customer_flow(customer: Customer, recorder: Recorder) -> None:
        await complete_survey(Browser("127.0.0.1", server.port), customer.token, customer.answers, pages, recorder)

    return await closed_loop(customers, customer_flow, concurrency=concurrency, time_limit=time_limit)


def with_worker_cpu(server: Server, phase: Any) -> LoadResult:
    """Run a load phase and note the CPU spent per finished job by its server's workers, by PostgreSQL and
    by the simulated customers (this process). A worker replaced meanwhile makes the workers' figure
    unknown (None) rather than wrong."""
    before, database_before, client_before = server.cpu_seconds(), database_cpu_seconds(), time.process_time()
    result: LoadResult = asyncio.run(phase)
    after, database_after, client_after = server.cpu_seconds(), database_cpu_seconds(), time.process_time()
    if result.done:
        result.client_cpu_per_job = (client_after - client_before) / result.done
        if before.keys() == after.keys():
            result.worker_cpu_per_job = sum(after[pid] - before[pid] for pid in after) / result.done
        # A PostgreSQL process started meanwhile (an autovacuum worker, a new connection) counts in full;
        # one that ended meanwhile is left out, its last figure being gone with it.
        result.database_cpu_per_job = sum(seconds - database_before.get(pid, 0.0)
                                          for pid, seconds in database_after.items()) / result.done
    return result


def run(url: str, settings: SurveyLoadSettings, logs: Path, progress: Any = print) -> SurveyLoadResults:
    """Fresh database, then at each concurrency level the ceiling and the submissions in turns, then the whole surveys."""
    datasets.fresh_database(url)
    datasets.seed(url)
    create_tables(datasets.sqlalchemy_url(url))
    pages = datasets.questionnaire_pages(url)
    rng = random.Random(6)
    levels = settings.concurrency
    env = datasets.app_environment(url)

    tokens = issue_links(url, len(levels) * (settings.submits + settings.surveys))
    customers = [Customer(token, random_answers(rng, pages)) for token in tokens]
    submit_groups = [customers[k * settings.submits:(k + 1) * settings.submits] for k in range(len(levels))]
    survey_start = len(levels) * settings.submits
    survey_groups = [customers[survey_start + k * settings.surveys: survey_start + (k + 1) * settings.surveys]
                     for k in range(len(levels))]
    save_drafts(url, [c for group in submit_groups for c in group], pages)

    ceiling: dict[int, LoadResult] = {}
    minimal: dict[int, LoadResult] = {}
    submit: dict[int, LoadResult] = {}
    survey: dict[int, LoadResult] = {}
    with start_gunicorn("bench.ceiling:app", {**env, "CEILING_DATABASE_URL": url}, logs / "ceiling.log",
                        workers=settings.workers, probe_path="/ping") as bare, \
            start_gunicorn("wsgi:app", env, logs / "survey.log", workers=settings.workers) as server:
        asyncio.run(_warm_up(bare, "/ping"))
        asyncio.run(_warm_up(server, "/login"))
        for level, group in zip(levels, submit_groups, strict=True):
            progress(f"survey load: opening {len(group)} last pages (not measured)")
            asyncio.run(_open_last_pages(server, group, len(pages)))
            inserts = [Customer("", random_answers(rng, pages)) for _ in range(settings.submits)]
            ceiling_rounds, minimal_rounds, submit_rounds = [], [], []
            for turn in range(ROUNDS):
                share = slice(turn * len(group) // ROUNDS, (turn + 1) * len(group) // ROUNDS)
                limit = settings.time_limit / ROUNDS
                phases = [
                    (ceiling_rounds, lambda: with_worker_cpu(bare, _ceiling_phase(bare, inserts[share], level, limit))),
                    (submit_rounds, lambda: with_worker_cpu(server, _submit_phase(group[share], pages, level, limit))),
                    (minimal_rounds, lambda: with_worker_cpu(
                        bare, _ceiling_phase(bare, inserts[share], level, limit, "/insert-minimal"))),
                ]
                # Each measurement takes each place in the turn equally often: what one phase leaves behind
                # (the server's autovacuum of the rows just stored, a checkpoint) falls on all three alike.
                for rounds, measure in phases[turn % 3:] + phases[:turn % 3]:
                    rounds.append(measure())
            ceiling[level], submit[level] = combined(ceiling_rounds), combined(submit_rounds)
            minimal[level] = combined(minimal_rounds)
            progress(f"  ceiling @{level}: {ceiling[level].per_second:.0f}/s, "
                     f"submit @{level}: {submit[level].per_second:.0f}/s "
                     f"({ROUNDS} rounds each: {' '.join(f'{r.per_second:.0f}' for r in ceiling_rounds)} / "
                     f"{' '.join(f'{r.per_second:.0f}' for r in submit_rounds)})")
        for level, group in zip(levels, survey_groups, strict=True):
            survey[level] = with_worker_cpu(server, _survey_phase(server, group, pages, level, settings.time_limit))
            progress(f"  whole survey @{level}: {survey[level].per_second:.1f} surveys/s")

    expected = sum(r.done for r in submit.values()) + sum(r.done for r in survey.values())
    stored = stored_responses(url)
    return SurveyLoadResults(ceiling, minimal, submit, survey, stored == expected,
                             f"{stored} responses stored for {expected} accepted submissions")
