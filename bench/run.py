"""`python -m bench`: build the data, run every benchmark, print one table, write bench/RESULTS.md.

Parameters come from the command line or the environment (BENCH_DATABASE_URL, BENCH_ROWS, ...);
`--quick` is a smaller run for trying things. Each benchmark starts from a fresh database.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import datasets, export, machine, survey_load
from .child import ChildResult, run_child
from .results import Row, kept_notes, markdown_table, milliseconds, render

SECTIONS = ("survey", "import", "report", "export")
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/bench"
#: Memory "flat in the file's size": the import's peak at the large file within this of the small file's.
FLAT_MEMORY_MIB = 64.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run: 100k/20k rows, fewer customers")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only these sections (repeatable)")
    parser.add_argument("--postgres-url", default=env("BENCH_DATABASE_URL", DEFAULT_POSTGRES),
                        help="PostgreSQL database the benchmark may empty (default %(default)s)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite measurements")
    parser.add_argument("--rows", type=int, default=int(env("BENCH_ROWS", "0")) or None,
                        help="large data set (default 1,000,000; --quick 100,000)")
    parser.add_argument("--small-rows", type=int, default=int(env("BENCH_SMALL_ROWS", "0")) or None,
                        help="small data set (default 100,000; --quick 20,000)")
    parser.add_argument("--concurrency", default=env("BENCH_CONCURRENCY", "50,200"),
                        help="simulated customers at once, comma-separated (default %(default)s)")
    parser.add_argument("--submits", type=int, default=int(env("BENCH_SUBMITS", "0")) or None,
                        help="submissions per concurrency level (default 1,000; --quick 400)")
    parser.add_argument("--surveys", type=int, default=int(env("BENCH_SURVEYS", "0")) or None,
                        help="whole surveys per concurrency level (default 200; --quick 60)")
    parser.add_argument("--time-limit", type=float, default=float(env("BENCH_TIME_LIMIT", "120")),
                        help="seconds at most for one measured load phase (default %(default)s)")
    parser.add_argument("--profile", action="store_true",
                        help="also write pyinstrument profiles of the import and report to bench/data/profiles/")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    options = parser.parse_args(argv)
    options.rows = options.rows or (100_000 if options.quick else 1_000_000)
    options.small_rows = options.small_rows or (20_000 if options.quick else 100_000)
    options.submits = options.submits or (400 if options.quick else 4000)
    options.surveys = options.surveys or (60 if options.quick else 200)
    try:
        options.levels = tuple(int(part) for part in options.concurrency.split(",") if part.strip())
    except ValueError:
        parser.error(f"--concurrency {options.concurrency!r}: give whole numbers separated by commas, e.g. 50,200")
    if not options.levels or min(options.levels) < 1:
        parser.error("--concurrency needs at least one level of 1 or more")
    if options.small_rows >= options.rows:
        parser.error("--small-rows must be smaller than --rows")
    options.sections = tuple(options.only or SECTIONS)
    return options


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


# --------------------------------------------------------------------------- survey load


def cpu_remark(name: str, level: int, phase: survey_load.LoadResult) -> str:
    """CPU per job of the gunicorn workers, PostgreSQL and the simulated customers: what a request costs."""
    def ms(value: float | None, unknown: str) -> str:
        return f"{value * 1000:,.2f} ms" if value is not None else f"not known ({unknown})"

    return (f"{name} @{level}: CPU per job: gunicorn workers "
            f"{ms(phase.worker_cpu_per_job, 'a worker was recycled during the phase')}, PostgreSQL "
            f"{ms(phase.database_cpu_per_job, 'no job finished')}, simulated customers "
            f"{ms(phase.client_cpu_per_job, 'no job finished')}")


def survey_rows(options: argparse.Namespace, logs: Path, remarks: list[str]) -> list[Row]:
    settings = survey_load.SurveyLoadSettings(options.levels, options.submits, options.surveys, options.time_limit)
    say(f"survey load on PostgreSQL: {options.levels} concurrent, {options.submits} submits and "
        f"{options.surveys} surveys per level")
    result = survey_load.run(options.postgres_url, settings, logs, progress=say)
    rows: list[Row] = []
    for level in options.levels:
        ceiling, submit, survey = result.ceiling[level], result.submit[level], result.survey[level]
        minimal = result.ceiling_minimal[level]
        submit_latency = submit.recorder.latency("submit")
        ratio = submit.per_second / ceiling.per_second if ceiling.per_second else 0.0
        remarks.extend(cpu_remark(name, level, phase) for name, phase in
                       (("ceiling insert", ceiling), ("minimal ceiling insert", minimal),
                        ("survey submission", submit), ("whole survey", survey)))
        p99_target = level == 50
        for title, phase in ((f"Ceiling: bare Flask insert of one row like a response, {level} concurrent", ceiling),
                             (f"Minimal ceiling (for comparison): bare Flask insert of a 4-column JSON row, "
                              f"{level} concurrent", minimal)):
            latency = phase.recorder.latency("insert")
            rows.append(Row(
                title,
                "PostgreSQL",
                f"{phase.done:,} POSTs" + (f", {phase.failed} failed" if phase.failed else ""),
                f"{phase.per_second:,.0f} rows/s"
                + (f" (submission = {submit.per_second / phase.per_second:.2f} ×)"
                   if phase is minimal and phase.per_second else ""),
                milliseconds(latency.p50, latency.p95, latency.p99) if latency else "",
            ))
        met = ratio >= 0.7 and not submit.failed and (not p99_target or (submit_latency is not None
                                                                        and submit_latency.p99 < 250))
        rows.append(Row(
            f"Survey submission (last page POST stores the response), {level} concurrent",
            "PostgreSQL",
            f"{submit.done:,} submissions" + (f", {submit.failed} failed" if submit.failed else ""),
            f"{submit.per_second:,.0f} responses/s = {ratio:.2f} × ceiling",
            milliseconds(submit_latency.p50, submit_latency.p95, submit_latency.p99) if submit_latency else "",
            "",
            "≥ 0.7 × ceiling" + ("; p99 < 250 ms" if p99_target else ""),
            met,
        ))
        pages = survey.recorder.latency()
        requests = sum(len(v) for v in survey.recorder.seconds.values())
        rows.append(Row(
            f"Whole survey (intro, 7 pages GET + POST, thanks), {level} concurrent",
            "PostgreSQL",
            f"{survey.done:,} surveys" + (f", {survey.failed} failed" if survey.failed else "")
            + (" (time limit)" if survey.stopped_by_time else ""),
            f"{survey.per_second:,.1f} surveys/s ({requests / survey.elapsed:,.0f} requests/s)",
            ("all requests " + milliseconds(pages.p50, pages.p95, pages.p99)) if pages else "",
        ))
        for name, phase in (("ceiling", ceiling), ("minimal ceiling", minimal), ("submit", submit), ("survey", survey)):
            if phase.recorder.errors:
                remarks.append(f"{name} @{level} errors: {dict(phase.recorder.errors.most_common(3))}")
    if not result.stored_ok:
        remarks.append(f"Survey load: stored responses do not match the accepted submissions: {result.stored_message}")
    else:
        remarks.append(f"Survey load: {result.stored_message} (checked in the database).")
    return rows


# --------------------------------------------------------------------------- data sets: import, report, export


@dataclass
class Measured:
    backend: str
    rows: int
    imported: ChildResult
    report: ChildResult | None = None
    pandas: ChildResult | None = None
    export: export.ExportResult | None = None
    total_responses: int = 0


def _mib(value: float) -> str:
    return f"{value:,.0f} MiB"


def measure_dataset(options: argparse.Namespace, backend: str, url: str, rows: int, csv_path: Path, logs: Path,
                    large: bool) -> Measured:
    profiles = datasets.DATA / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)

    def profile(name: str) -> Path | None:
        return profiles / f"{name}-{backend}-{rows}.txt" if options.profile else None

    say(f"{backend} {rows:,}: fresh database")
    datasets.fresh_database(url)
    datasets.seed(url)
    say(f"{backend} {rows:,}: importing {csv_path.name}")
    imported = run_child("import", url, str(csv_path), profile=profile("import"))
    say(f"  {imported.details['rows']:,} rows in {imported.seconds:.1f} s ({rows / imported.seconds:,.0f} rows/s)")
    measured = Measured(backend, rows, imported)
    cross = datasets.add_cross_scoring(url)
    measured.total_responses = rows + cross
    if "report" in options.sections:
        say(f"{backend} {rows:,}: reconciled report and the pandas route")
        measured.report = run_child("report", url, profile=profile("report"))
        measured.pandas = run_child("pandas", url)
        say(f"  report {measured.report.seconds:.2f} s, pandas {measured.pandas.seconds:.2f} s")
        mine, theirs = measured.report.details["scores"], measured.pandas.details["scores"]
        if any(abs((mine[u] or 0) - (theirs.get(u) or 0)) > 1e-6 for u in mine):
            raise RuntimeError("the report and the pandas route disagree on the consultant scores")
    if large and "export" in options.sections:
        say(f"{backend} {rows:,}: raw export over HTTP")
        measured.export = export.run(url, logs, backend)
        say(f"  {measured.export.lines - 1:,} rows in {measured.export.seconds:.1f} s")
    return measured


def dataset_rows(options: argparse.Namespace, measured: list[Measured], remarks: list[str]) -> list[Row]:
    rows: list[Row] = []
    by_key = {(m.backend, m.rows): m for m in measured}
    for m in measured:
        size = f"{m.rows:,} rows"
        rate = m.rows / m.imported.seconds
        small = by_key.get((m.backend, options.small_rows))
        if m.rows == options.rows and small is not None:
            growth = m.imported.peak_mib - small.imported.peak_mib
            flat = growth <= FLAT_MEMORY_MIB
            memory = (f"{_mib(m.imported.peak_mib)} ({growth:+,.0f} vs {small.rows:,} rows; "
                      f"app loaded: {_mib(m.imported.baseline_mib)})")
            target = f"≥ 50,000 rows/s; peak within {FLAT_MEMORY_MIB:.0f} MiB of the {small.rows:,}-row import"
            met: bool | None = rate >= 50_000 and flat
        else:
            memory = f"{_mib(m.imported.peak_mib)} (app loaded: {_mib(m.imported.baseline_mib)})"
            target, met = "≥ 50,000 rows/s", rate >= 50_000
        rows.append(Row("Import consultant CSV (one pass: checked and stored together)", m.backend, size,
                        f"{rate:,.0f} rows/s ({m.imported.seconds:,.1f} s, CPU {m.imported.cpu_seconds:,.1f} s)",
                        "", memory, target, met))
    for m in measured:
        if m.report is None or m.pandas is None:
            continue
        size = f"{m.total_responses:,} responses"
        large = m.rows == options.rows
        faster = m.report.seconds < m.pandas.seconds
        rows.append(Row(
            "Reconciled report (build_report: SQL aggregates + scoring.reconcile)", m.backend, size,
            f"{m.report.seconds:,.2f} s ({m.pandas.seconds / m.report.seconds:,.1f}× faster than pandas)"
            if faster else f"{m.report.seconds:,.2f} s (pandas is {m.report.seconds / m.pandas.seconds:,.1f}× faster)",
            "", f"{_mib(m.report.peak_mib)} (app loaded: {_mib(m.report.baseline_mib)})",
            ("< 5 s; " if large else "") + "faster than pandas",
            faster and (not large or m.report.seconds < 5.0),
        ))
        rows.append(Row(
            "Analyst's route: pd.read_sql of the responses + scipy Welch tests", m.backend, size,
            f"{m.pandas.seconds:,.2f} s", "", f"{_mib(m.pandas.peak_mib)} (app loaded: {_mib(m.pandas.baseline_mib)})",
        ))
    for m in measured:
        if m.export is None:
            continue
        e = m.export
        exported = e.lines - 1
        ok = e.status == 200 and exported == m.total_responses
        if not ok:
            remarks.append(f"Export on {m.backend}: status {e.status}, {exported:,} rows of {m.total_responses:,}"
                           + (f"; cut off: {e.cut_off}" if e.cut_off else ""))
        rows.append(Row(
            "Raw export: streamed CSV over HTTP (gunicorn worker)", m.backend, f"{exported:,} rows, "
            f"{e.bytes / 1e6:,.0f} MB" + (f" of {m.total_responses:,}: CUT OFF" if not ok else ""),
            f"{e.seconds:,.1f} s ({exported / e.seconds:,.0f} rows/s)", "",
            f"{_mib(e.worker_peak_mib)} worker peak (before: {_mib(e.worker_baseline_mib)})",
            "< 60 s; < 300 MB", ok and e.seconds < 60 and e.worker_peak_mib * 1.048576 < 300,
        ))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    datasets.DATA.mkdir(parents=True, exist_ok=True)
    logs = datasets.DATA / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    load_before = load_average()
    info = machine.describe(datasets.sqlalchemy_url(options.postgres_url))
    if info["PostgreSQL"].startswith("unreachable"):
        print(f"PostgreSQL at {options.postgres_url} is {info['PostgreSQL']}; start it or set BENCH_DATABASE_URL "
              "(create the database with: createdb -h 127.0.0.1 -U postgres bench)", file=sys.stderr)
        return 2
    rows: list[Row] = []
    remarks: list[str] = []
    if "survey" in options.sections:
        try:
            rows += survey_rows(options, logs, remarks)
        except Exception as exc:  # noqa: BLE001 — report it and go on with the other sections
            say(f"survey load failed: {exc}")
            remarks.append(f"Survey load: the measurement failed: {str(exc)[:300]}")
    if {"import", "report", "export"} & set(options.sections):
        item_codes = [code for page in _pages(options.postgres_url) for code in page]
        files = {n: datasets.write_consultant_csv(datasets.DATA / f"consultant-{n}.csv", n, item_codes)
                 for n in (options.small_rows, options.rows)}
        sqlite_dir = datasets.DATA / "sqlite"
        backends = [("PostgreSQL", options.postgres_url)]
        if not options.no_sqlite:
            backends.insert(0, ("SQLite", f"sqlite:///{sqlite_dir / 'bench.sqlite'}"))
        measured = []
        for backend, url in backends:
            for n in (options.small_rows, options.rows):
                try:
                    measured.append(measure_dataset(options, backend, url, n, files[n], logs, n == options.rows))
                except Exception as exc:  # noqa: BLE001 — report it in the table's remarks and go on
                    say(f"{backend} {n:,} failed: {exc}")
                    remarks.append(f"{backend} {n:,} rows: the measurement failed: {str(exc)[:300]}")
        shutil.rmtree(sqlite_dir, ignore_errors=True)
        rows += dataset_rows(options, measured, remarks)
    minutes = (time.monotonic() - started) / 60
    settings = {
        "Command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "Data": f"{options.small_rows:,} and {options.rows:,} consultant rows, plus 2,160 cross-scoring rows",
        "Survey load": f"{', '.join(map(str, options.levels))} concurrent; {options.submits:,} submissions and "
                       f"{options.surveys:,} whole surveys per level; gunicorn with deploy/gunicorn.conf.py, "
                       "2 sync workers",
        "Load average (1/5/15 min) before / after": f"{load_before} / {load_average()}",
        "Duration": f"{minutes:.1f} min",
    }
    print(markdown_table(rows))
    options.out.write_text(render(info, settings, rows, remarks, kept_notes(options.out)), encoding="utf-8")
    say(f"written {options.out} ({minutes:.1f} min)")
    return 0


def _pages(url: str) -> list[list[str]]:
    """The questionnaire's item codes (from a freshly seeded database)."""
    datasets.fresh_database(url)
    datasets.seed(url)
    return datasets.questionnaire_pages(url)
