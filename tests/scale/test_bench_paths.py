"""The benchmark measures what it claims: its generated file imports cleanly, and its pandas
yardstick computes the same unit scores as the reconciled report it is compared with."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from bench.analyst import analyst_report
from bench.client import Browser, LoopbackOnly
from bench.datasets import consultant_rows, insert_cross_scoring, write_consultant_csv
from bench.results import NOTES_MARKER, Row, kept_notes, markdown_table, render
from survey.extensions import db
from survey.models import Response, Source, Unit
from survey.services.imports import import_consultant
from survey.services.reports import build_report


@pytest.fixture
def benchmark_campaign(make_campaign, tmp_path):
    """A campaign filled the way the benchmark fills it: a generated consultant file, then cross-scoring."""
    campaign = make_campaign(code="bench-2017", units=6)
    units = [u.code for u in db.session.scalars(sa.select(Unit).order_by(Unit.code))]
    codes = [item.code for item in campaign.questionnaire.items]
    path = write_consultant_csv(tmp_path / "consultant.csv", 1200, codes, units=units)
    result = import_consultant(campaign, path, actor="test")
    insert_cross_scoring(campaign, per_assignment=12)
    db.session.commit()
    return campaign, result


def test_generated_file_imports_every_row(benchmark_campaign):
    campaign, result = benchmark_campaign
    assert result.rows == 1200 and result.units == 6
    stored = db.session.scalar(sa.select(sa.func.count()).select_from(Response).where(
        Response.campaign_id == campaign.id, Response.source == Source.CONSULTANT))
    assert stored == 1200


def test_generated_rows_are_deterministic_and_well_formed():
    codes = ["a", "b", "c"]
    first = [row for chunk in consultant_rows(120, codes, units=["x-1", "y-2"]) for row in chunk]
    again = [row for chunk in consultant_rows(120, codes, units=["x-1", "y-2"]) for row in chunk]
    assert first == again
    assert len({row[1] for row in first}) == 120
    assert {row[0] for row in first} <= {"x-1", "y-2"}
    assert {row[2] for row in first} <= {"household", "business"}
    assert {cell for row in first for cell in row[3:]} <= {"", *map(str, range(1, 11))}


def test_pandas_route_computes_the_same_unit_scores_as_the_report(benchmark_campaign):
    campaign, _ = benchmark_campaign
    report = {row["unit_code"]: row for row in build_report(campaign).unit_rows("en")}
    frame = analyst_report(db.engine, campaign.id)
    assert set(frame["unit_code"]) == set(report)
    for row in frame.itertuples():
        mine = report[row.unit_code]
        assert row.consultant_n == mine["consultant_n"]
        assert row.consultant_score == pytest.approx(mine["consultant_score"], abs=1e-9)
        assert row.consultant_ci_low == pytest.approx(mine["consultant_ci_low"], abs=1e-9)
        assert row.cross_n == mine["cross_n"]
        assert row.cross_score == pytest.approx(mine["cross_score"], abs=1e-9)
        assert 0.0 <= row.p_value <= 1.0 and not math.isnan(row.p_adjusted)


def test_client_refuses_anything_but_loopback():
    Browser("127.0.0.1", 8000)
    Browser("::1", 8000)
    with pytest.raises(LoopbackOnly):
        Browser("10.0.0.11", 8000)
    with pytest.raises(LoopbackOnly):
        Browser("example.com", 80)


def test_results_file_keeps_hand_written_notes(tmp_path):
    path = tmp_path / "RESULTS.md"
    rows = [Row("Import", "SQLite", "10 rows", "5 rows/s", target="≥ 50,000 rows/s", met=False)]
    first = render({"CPU": "test"}, {"Command": "x"}, rows, [], "")
    path.write_text(first + "\n## Profile\n\nkept text\n")
    second = render({"CPU": "test"}, {"Command": "y"}, rows, [], kept_notes(path))
    assert "kept text" in second and second.count(NOTES_MARKER) == 1
    assert "| Import | SQLite | 10 rows | 5 rows/s |  |  | ≥ 50,000 rows/s | **no** |" in markdown_table(rows)


def test_rounds_of_a_load_phase_combine_into_one_rate():
    """The ceiling's and the submissions' rounds: jobs and seconds add up, latencies pool, CPU per job is weighted."""
    from bench.load import LoadResult, Recorder, combined

    def round_of(done: int, seconds: float, latencies: list[float], cpu: float | None) -> LoadResult:
        recorder = Recorder()
        for value in latencies:
            recorder.add("submit", value)
        # The database's and the customers' CPU per job: a third and a half of the workers'.
        return LoadResult(50, done, 1, seconds, recorder, False, cpu, cpu and cpu / 3, cpu and cpu / 2)

    whole = combined([round_of(300, 1.0, [0.01, 0.02], 0.002), round_of(100, 1.0, [0.03], 0.001)])
    assert (whole.done, whole.failed, whole.elapsed) == (400, 2, 2.0)
    assert whole.per_second == 200.0  # not the mean of the rounds' rates (300 and 100)
    assert sorted(whole.recorder.seconds["submit"]) == [0.01, 0.02, 0.03]
    assert whole.worker_cpu_per_job == pytest.approx((300 * 0.002 + 100 * 0.001) / 400)
    assert whole.database_cpu_per_job == pytest.approx((300 * 0.002 + 100 * 0.001) / 400 / 3)
    assert whole.client_cpu_per_job == pytest.approx((300 * 0.002 + 100 * 0.001) / 400 / 2)
    partly_known = combined([round_of(10, 1.0, [], 0.001), round_of(10, 1.0, [], None)])
    assert partly_known.worker_cpu_per_job is None and partly_known.database_cpu_per_job is None


def test_cpu_time_of_processes_is_read_from_proc():
    """The benchmark's CPU figures: a live process's user + system time grows with its work; a gone one is None."""
    import os
    import subprocess
    import time

    from bench.servers import database_cpu_seconds, process_cpu_seconds

    before = process_cpu_seconds(os.getpid())
    started = time.process_time()
    while time.process_time() - started < 0.3:
        pass
    after = process_cpu_seconds(os.getpid())
    assert before is not None and after is not None and after - before >= 0.2
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert process_cpu_seconds(gone.pid) is None
    assert all(seconds >= 0 for seconds in database_cpu_seconds().values())


def test_the_ceiling_stores_a_row_made_like_a_response(make_campaign, database_url, monkeypatch):
    """bench/ceiling.py: its table has the response table's definition, and its row is filled like a web response."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: the ceiling runs on the benchmark's PostgreSQL and copies its response table")
    from bench import ceiling

    campaign = make_campaign(code="bench-2017", units=3)
    db.session.commit()
    ceiling.create_tables(database_url)
    monkeypatch.setenv("CEILING_DATABASE_URL", database_url)
    app = ceiling.create_ceiling_app()
    try:
        client = app.test_client()
        form = {"q1": "7", "q2": "na", "q3": "9", "csrf_token": "x", "_action": "next"}
        for _ in range(4):
            assert client.post("/insert", data=form).status_code == 201
        assert client.post("/insert-minimal", data=form).status_code == 201
        with db.engine.connect() as connection:
            def definition(table: str) -> dict[str, list[tuple[str, ...]]]:
                def rows(sql: str) -> list[tuple[str, ...]]:
                    return sorted(tuple(r) for r in connection.execute(sa.text(sql), {"t": table}))

                return {
                    "columns": rows("SELECT column_name, data_type, is_nullable, "
                                    "coalesce(character_maximum_length, 0)::text "
                                    "FROM information_schema.columns WHERE table_name = :t"),
                    "indexes": rows("SELECT regexp_replace(indexdef, '^.* USING ', '') FROM pg_indexes "
                                    "WHERE tablename = :t"),
                    "constraints": rows("SELECT contype::text, pg_get_constraintdef(oid) FROM pg_constraint "
                                        "WHERE conrelid = CAST(:t AS regclass) AND contype IN ('c', 'f', 'u')"),
                }

            mine, response = definition(ceiling.COMPARABLE), definition("response")
            assert mine == response and len(mine["indexes"]) == 6 and len(mine["constraints"]) >= 10
            rows = connection.execute(sa.text(f"SELECT * FROM {ceiling.COMPARABLE} ORDER BY id")).mappings().all()
            minimal = connection.execute(sa.text("SELECT answers FROM bench_ceiling")).scalar_one()
    finally:
        app.extensions["ceiling_engine"].dispose()
        with db.engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE {ceiling.COMPARABLE}, bench_ceiling"))
    assert len(rows) == 4 and minimal == {"q1": 7, "q2": None, "q3": 9}
    units = set(db.session.scalars(sa.select(Unit.id)))
    assert {row["unit_id"] for row in rows[:3]} == units  # the inserts go round the units
    for row in rows:
        assert row["answers"] == {"q1": 7, "q2": None, "q3": 9}
        assert row["campaign_id"] == campaign.id and row["invitation_id"] is None
        assert row["respondent_index"] == 8.0 and row["dimension_1"] == 8.0 and row["dimension_12"] == 8.0
        assert (row["channel"], row["customer_group"], row["review_state"]) == ("web", "household", "received")
    assert len({row["respondent_id"] for row in rows}) == 4 and len({row["idempotency_key"] for row in rows}) == 4


def test_submit_cost_takes_turns_counts_every_job_and_refuses_a_wrong_answer():
    """bench/submit_cost.py: blocks of the two kinds alternate, which goes first turning round each
    block; warm-up jobs are not counted; a job answered with another status stops the run."""
    from bench.submit_cost import measure

    served: list[str] = []

    def app_answering(status: str):
        def app(environ, start_response):
            served.append(environ["name"])
            start_response(status, [])
            return [b"ok"]
        return app

    def environs(name: str, count: int) -> list[dict[str, str]]:
        return [{"name": name} for _ in range(count)]

    costs = measure([("a", app_answering("303 See Other"), environs("a", 11), "303"),
                     ("b", app_answering("201 Created"), environs("b", 11), "201")],
                    block=3, warm_up=2, profiler=None)
    assert served[:4] == ["a", "a", "b", "b"]  # the warm-up, not counted
    assert "".join(served[4:]) == "aaabbb" "bbbaaa" "aaabbb"  # 9 counted of each, in blocks of 3, turning round
    assert costs["a"].jobs == costs["b"].jobs == 9
    assert costs["a"].app > 0 and costs["a"].database >= 0
    with pytest.raises(RuntimeError, match="expected 201, got 500"):
        measure([("c", app_answering("500 Internal Server Error"), environs("c", 3), "201")],
                block=1, warm_up=0, profiler=None)


def test_database_run_time_is_read_from_schedstat():
    """The finer PostgreSQL CPU figure (nanoseconds from /proc/<pid>/schedstat) of the in-process tools."""
    from pathlib import Path

    from bench.servers import database_run_ns

    if not Path("/proc/self/schedstat").exists():
        pytest.skip("this kernel keeps no /proc/<pid>/schedstat")
    times = database_run_ns()
    for pid, ns in times.items():
        assert isinstance(ns, int) and ns >= 0
        comm = Path(f"/proc/{pid}/comm")
        assert not comm.exists() or comm.read_text().strip() == "postgres"  # a PostgreSQL process, or gone since


def test_the_load_client_posts_back_a_survey_pages_hidden_fields(app, backend, make_campaign, make_invitation):
    """bench/client.py reads what a browser would post back from a real survey page: the CSRF token,
    and the link's state where the page carries it (PostgreSQL)."""
    import re

    from bench.client import survey_fields_in

    invitation, token = make_invitation(make_campaign())
    page = app.test_client().get(f"/s/{token}/1")
    html = page.get_data()
    fields = survey_fields_in(html, page.status_code)
    expected = dict(re.findall(rb'<input type="hidden" name="([^"]+)" value="([^"]+)"', html))
    assert fields == {name.decode(): value.decode() for name, value in expected.items()}
    assert ("link_state" in fields) == (backend == "postgresql") and fields["csrf_token"]
    with pytest.raises(ValueError, match="no CSRF token"):
        survey_fields_in(b"<html></html>", 410)
