"""Where a survey request's time goes: SQL statements and CPU per kind of request.

`python -m bench.profile_survey [DATABASE_URL]` answers whole surveys in-process (Flask's test
client, no network) on a fresh database (default: the test database test_g) and prints, per
kind of request, the statements sent and the CPU milliseconds spent. `--show` prints the
statements of one page. The server CPU column sums the CPU time of every PostgreSQL process
(backends, WAL writer) during the requests. Numbers that depend less than latencies on the load
on the machine.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from . import datasets
from .client import survey_fields_in
from .servers import database_run_ns, database_seconds_since
from .survey_load import issue_links, random_answers

def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_survey")
    parser.add_argument("url", nargs="?", default="postgresql://postgres@127.0.0.1:5432/test_g")
    parser.add_argument("--surveys", type=int, default=30)
    parser.add_argument("--show", action="store_true", help="print the statements of the last page's GET")
    parser.add_argument("--sql", action="append", default=[], metavar="STATEMENT",
                        help="run this statement on the fresh database first (to try a schema change)")
    parser.add_argument("--cprofile", metavar="KIND",
                        help="profile one kind of request (e.g. 'submit POST') with a CPU clock and print the top")
    parser.add_argument("--sort", default="cumulative", help="order of the profile (pstats: cumulative, tottime, ...)")
    parser.add_argument("--top", type=int, default=60, help="lines of the profile to print")
    options = parser.parse_args()
    datasets.fresh_database(options.url)
    datasets.seed(options.url)
    if options.sql:
        engine = sa.create_engine(datasets.sqlalchemy_url(options.url))
        try:
            with engine.begin() as connection:
                for statement in options.sql:
                    connection.execute(sa.text(statement))
        except sa.exc.DBAPIError as error:
            parser.error(f"--sql {statement!r} failed: {error.orig}")
        finally:
            engine.dispose()
    pages = datasets.questionnaire_pages(options.url)
    tokens = issue_links(options.url, options.surveys + 5)
    app = datasets.make_app(options.url)
    statements: list[str] = []
    with app.app_context():
        from survey.extensions import db

        sa.event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    cpu: dict[str, list[float]] = defaultdict(list)
    server: dict[str, list[float]] = defaultdict(list)
    sent: dict[str, list[int]] = defaultdict(list)
    rng = random.Random(3)

    profiler = cProfile.Profile(time.process_time) if options.cprofile else None
    warm = [False]

    def timed(kind: str, call: Any) -> Any:
        statements.clear()
        profiled = profiler is not None and kind == options.cprofile and warm[0]
        server_before = database_run_ns()
        started = time.process_time()
        if profiled:
            profiler.enable()
        reply = call()
        if profiled:
            profiler.disable()
        cpu[kind].append(time.process_time() - started)
        server[kind].append(database_seconds_since(server_before))
        sent[kind].append(len(statements))
        return reply

    for position, token in enumerate(tokens):
        if position == 5:  # the first surveys warm up caches (templates, compiled statements)
            warm[0] = True
            cpu.clear()
            server.clear()
            sent.clear()
        client = app.test_client()
        answers = random_answers(rng, pages)
        timed("intro GET", lambda: client.get(f"/s/{token}"))
        for number, codes in enumerate(pages, start=1):
            page = timed("page GET", lambda: client.get(f"/s/{token}/{number}"))
            if options.show and position == 0 and number == len(pages):
                print("\n".join(s.split("\n")[0][:140] for s in statements))
            data = {**survey_fields_in(page.get_data(), page.status_code), "_action": "next",
                    **{code: answers[code] for code in codes}}
            kind = "submit POST" if number == len(pages) else "page POST"
            reply = timed(kind, lambda: client.post(f"/s/{token}/{number}", data=data))
            assert reply.status_code == 303, reply.status_code
    print(f"{'request':<12} {'n':>5} {'statements':>11} {'CPU ms':>8} {'server CPU ms':>14}")
    for kind in ("intro GET", "page GET", "page POST", "submit POST"):
        values = cpu[kind]
        mean_sent, mean_cpu = sum(sent[kind]) / len(values), 1000 * sum(values) / len(values)
        mean_server = 1000 * sum(server[kind]) / len(values)
        print(f"{kind:<12} {len(values):>5} {mean_sent:>11.1f} {mean_cpu:>8.2f} {mean_server:>14.3f}")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats(options.sort).print_stats(options.top)


if __name__ == "__main__":
    main()
