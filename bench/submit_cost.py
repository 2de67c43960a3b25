"""What a survey submission costs beside the ceiling's insert, measured in one process without load.

`python -m bench.submit_cost [DATABASE_URL]` prepares customers as the benchmark does (links
issued, six pages saved as their draft, the last page opened for its cookie and CSRF token), then
calls the survey app and the ceiling app (bench/ceiling.py) directly through WSGI, as gunicorn's
worker would, in interleaved blocks: the last page's POST of each customer (303 to the thanks
page) and the ceiling's insert of the same answers (201). It prints, per job, the CPU time of
this process (the app's share of a gunicorn worker's time, without gunicorn's parsing and
writing, which both pay alike) and of every PostgreSQL process (backends, WAL writer), and the
ratio of the two totals.

Unlike rates under load, these figures hardly move with the rest of the machine's work, and the
blocks take turns, so a slower spell falls on both: use it to see what a change to the
submission's path is worth before running `make bench`. The default database is the test database
test_g, emptied first. ``--profile FILE`` writes a cProfile of the survey's blocks (CPU clock).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from werkzeug.test import EnvironBuilder

from . import ceiling, datasets
from .client import survey_fields_in
from .servers import database_run_ns, database_seconds_since
from .survey_load import Customer, issue_links, random_answers, save_drafts

@dataclass
class Cost:
    """CPU seconds spent on ``jobs`` jobs: by this process (the app) and by PostgreSQL."""

    app: float = 0.0
    database: float = 0.0
    jobs: int = 0

    def line(self, name: str) -> str:
        app, database = 1000 * self.app / self.jobs, 1000 * self.database / self.jobs
        return f"{name:<18} {self.jobs:>6} {app:>9.3f} {database:>9.3f} {app + database:>9.3f}"

    @property
    def per_job(self) -> float:
        return (self.app + self.database) / self.jobs


def call(app: Callable[..., Iterable[bytes]], environ: dict[str, Any], expected: str) -> None:
    """One request through the WSGI interface, its body read and closed, as a server does."""
    statuses: list[str] = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    try:
        for _ in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    if not statuses[0].startswith(expected):
        raise RuntimeError(f"expected {expected}, got {statuses[0]}")


def prepare(url: str, customers: int, seed: int) -> tuple[Any, Any, list[dict[str, Any]], list[dict[str, Any]]]:
    """A fresh database, the two apps, and per customer the environ of the survey's POST and the ceiling's."""
    datasets.fresh_database(url)
    datasets.seed(url)
    pages = datasets.questionnaire_pages(url)
    rng = random.Random(seed)
    people = [Customer(token, random_answers(rng, pages)) for token in issue_links(url, customers)]
    save_drafts(url, people, pages)
    ceiling.create_tables(datasets.sqlalchemy_url(url))
    os.environ["CEILING_DATABASE_URL"] = url
    ceiling_app = ceiling.create_ceiling_app()
    survey_app = datasets.make_app(url)
    client = survey_app.test_client()
    last = len(pages)
    submits, inserts = [], []
    for person in people:
        page = client.get(f"/s/{person.token}/{last}")
        cookie = client.get_cookie("survey_browser", path="/s/")
        if page.status_code != 200 or cookie is None:
            raise RuntimeError(f"the last page answered {page.status_code}, without the browser cookie")
        client.delete_cookie("survey_browser", path="/s/")  # the next customer is another browser
        data = {**survey_fields_in(page.get_data(), page.status_code), "_action": "next",
                **{code: person.answers[code] for code in pages[-1]}}
        submits.append(EnvironBuilder(path=f"/s/{person.token}/{last}", method="POST", data=data,
                                      headers={"Cookie": f"survey_browser={cookie.value}"}).get_environ())
        inserts.append(EnvironBuilder(path="/insert", method="POST", data=person.answers).get_environ())
    return survey_app, ceiling_app, submits, inserts


def measure(jobs: Sequence[tuple[str, Any, list[dict[str, Any]], str]], block: int, warm_up: int,
            profiler: cProfile.Profile | None) -> dict[str, Cost]:
    """Run the jobs' environs in interleaved blocks (the order turning round each block); cost per name."""
    costs = {name: Cost() for name, *_ in jobs}
    for name, app, environs, expected in jobs:
        for environ in environs[:warm_up]:
            call(app, environ, expected)
    total = min(len(environs) for *_, environs, _ in jobs)
    for number, start in enumerate(range(warm_up, total, block)):
        order = jobs if number % 2 == 0 else list(reversed(jobs))
        for name, app, environs, expected in order:
            chunk = environs[start:start + block]
            profiled = profiler is not None and name == "survey submission"
            database_before = database_run_ns()
            started = time.process_time()
            if profiled:
                profiler.enable()
            for environ in chunk:
                call(app, environ, expected)
            if profiled:
                profiler.disable()
            cost = costs[name]
            cost.app += time.process_time() - started
            cost.database += database_seconds_since(database_before)
            cost.jobs += len(chunk)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.submit_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", default="postgresql://postgres@127.0.0.1:5432/test_g")
    parser.add_argument("--customers", type=int, default=2000, help="customers (each submits once)")
    parser.add_argument("--block", type=int, default=100, help="jobs per block")
    parser.add_argument("--warm-up", type=int, default=50, help="jobs of each kind not counted")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the survey's blocks here")
    options = parser.parse_args()
    if not options.url.startswith(("postgresql://", "postgres://")):
        parser.error("a PostgreSQL URL is needed (the ceiling's table is made with PostgreSQL's CREATE TABLE ... LIKE)")
    if options.customers <= options.warm_up or options.block < 1:
        parser.error("--customers must exceed --warm-up, and --block be at least 1")
    survey_app, ceiling_app, submits, inserts = prepare(options.url, options.customers, seed=5)
    profiler = cProfile.Profile(time.process_time) if options.profile else None
    costs = measure([("survey submission", survey_app, submits, "303"), ("ceiling insert", ceiling_app, inserts, "201")],
                    options.block, options.warm_up, profiler)
    print(f"{'CPU ms per job':<18} {'jobs':>6} {'app':>9} {'database':>9} {'total':>9}")
    for name, cost in costs.items():
        print(cost.line(name))
    ratio = costs["ceiling insert"].per_job / costs["survey submission"].per_job
    print(f"ratio of the totals (ceiling / submission): {ratio:.3f}")
    if profiler is not None:
        profiler.dump_stats(options.profile)
        print(f"profile written to {options.profile}")


if __name__ == "__main__":
    main()
