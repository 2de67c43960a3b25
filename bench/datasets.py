"""The benchmarks' own data: fresh databases, the 27 units and a campaign, and generated files.

Everything is generated from a seed, so two runs measure the same data. The consultant CSV
is written a chunk at a time (memory does not grow with the file), in the import format of
DESIGN.md; each unit has its own satisfaction level, so the report has something to find.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
#: Keys the benchmark's servers and child processes share (pseudonyms must match across them).
SECRET_KEY = "bench-secret-key-not-for-production"
PSEUDONYM_KEY = "bench-pseudonym-key-not-for-production"
CAMPAIGN = "bench-2017"
HQ_EMAIL = "hq@bench.example.vn"
HQ_PASSWORD = "bench password 2017"
CHUNK = 50_000


def sqlalchemy_url(url: str) -> str:
    """A database URL with the psycopg 3 driver for PostgreSQL."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def instance_path() -> Path:
    """An instance folder of the benchmark's own, so the developer's instance/ is never touched."""
    path = DATA / "instance"
    path.mkdir(parents=True, exist_ok=True)
    return path


def app_environment(url: str) -> dict[str, str]:
    """The environment a server or child process of the benchmark runs with."""
    return {
        "DATABASE_URL": url,
        "SECRET_KEY": SECRET_KEY,
        "PSEUDONYM_KEY": PSEUDONYM_KEY,
        "SURVEY_ENV": "production",
        "SURVEY_INSTANCE_PATH": str(instance_path()),
        "SURVEY_BASE_URL": "http://127.0.0.1",
    }


def make_app(url: str) -> Flask:
    """The survey application on ``url`` (call inside this process only)."""
    os.environ["SURVEY_INSTANCE_PATH"] = str(instance_path())
    from survey import create_app

    return create_app({
        "SQLALCHEMY_DATABASE_URI": sqlalchemy_url(url),
        "SECRET_KEY": SECRET_KEY,
        "PSEUDONYM_KEY": PSEUDONYM_KEY,
        "RATELIMIT_STORAGE_URI": "memory://",
    })


def fresh_database(url: str) -> None:
    """Empty the database: a new public schema on PostgreSQL, a deleted file for SQLite; then migrate."""
    full = sqlalchemy_url(url)
    if full.startswith("sqlite:///"):
        path = Path(full.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        engine = sa.create_engine(full)
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    app = make_app(url)
    with app.app_context():
        from flask_migrate import upgrade

        from survey.extensions import db

        upgrade(directory=app.extensions["migrate"].directory)
        db.engine.dispose()


def seed(url: str) -> None:
    """The 27 units, the default questionnaire, an open campaign and an HQ account."""
    app = make_app(url)
    with app.app_context():
        from survey.extensions import db
        from survey.models import Campaign, Role
        from survey.questionnaire import default_questionnaire_text, parse_questionnaire, store_questionnaire
        from survey.services.units import UNITS_CSV, read_units_csv, upsert_units
        from survey.services.users import create_user

        upsert_units(read_units_csv(UNITS_CSV.read_bytes()))
        questionnaire = store_questionnaire(parse_questionnaire(default_questionnaire_text()))
        db.session.add(Campaign(code=CAMPAIGN, name_vi="Đo hiệu năng 2017", name_en="Benchmark 2017",
                                questionnaire=questionnaire))
        create_user(HQ_EMAIL, Role.HQ, None, HQ_PASSWORD)
        db.session.commit()
        db.engine.dispose()


def questionnaire_pages(url: str) -> list[list[str]]:
    """The campaign's item codes page by page (one page per dimension)."""
    app = make_app(url)
    with app.app_context():
        from survey.extensions import db
        from survey.models import Campaign

        campaign = db.session.scalar(sa.select(Campaign).where(Campaign.code == CAMPAIGN))
        pages = [[item.code for item in dimension.items] for dimension in campaign.questionnaire.dimensions]
        db.engine.dispose()
    return pages


def unit_codes() -> list[str]:
    """The 27 unit codes, from the packaged units file."""
    from survey.services.units import UNITS_CSV

    with UNITS_CSV.open(newline="", encoding="utf-8") as handle:
        return [row["unit_code"] for row in csv.DictReader(handle)]


def answer_matrix(rng: np.random.Generator, levels: np.ndarray, n_items: int, blank_share: float = 0.03) -> np.ndarray:
    """Answers 1..10 around each respondent's unit level, with a share of blanks (NaN)."""
    person = rng.normal(0.0, 0.8, size=(len(levels), 1))
    noise = rng.normal(0.0, 1.0, size=(len(levels), n_items))
    answers = np.clip(np.rint(levels[:, None] + person + noise), 1, 10)
    answers[rng.random(answers.shape) < blank_share] = np.nan
    return answers


def unit_levels(units: list[str]) -> np.ndarray:
    """A satisfaction level per unit around EVNNPC's 7.5, the same in every run."""
    return 7.5 + 0.6 * np.sin(np.arange(len(units)) * 1.7)


def consultant_rows(rows: int, item_codes: list[str], seed_value: int = 2017,
                    units: list[str] | None = None) -> Iterator[list[list[Any]]]:
    """Consultant interview rows in chunks: unit_code, respondent_id, customer_group, answers…"""
    units = units or unit_codes()
    levels = unit_levels(units)
    rng = np.random.default_rng(seed_value)
    tokens = np.array(["", *(str(v) for v in range(1, 11))], dtype=object)
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        unit_index = rng.integers(0, len(units), n)
        answers = answer_matrix(rng, levels[unit_index], len(item_codes))
        cells = tokens[np.where(np.isnan(answers), 0, answers).astype(np.intp)].tolist()
        business = rng.random(n) < 0.2
        yield [
            [units[u], f"C{start + k:08d}", "business" if b else "household", *cell]
            for k, (u, b, cell) in enumerate(zip(unit_index.tolist(), business.tolist(), cells, strict=True))
        ]


def write_consultant_csv(path: Path, rows: int, item_codes: list[str], units: list[str] | None = None) -> Path:
    """Write a consultant import file of ``rows`` rows (kept between runs when it already exists)."""
    if path.exists() and path.with_suffix(".done").exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["unit_code", "respondent_id", "customer_group", *item_codes])
        for chunk in consultant_rows(rows, item_codes, units=units):
            writer.writerows(chunk)
    path.with_suffix(".done").write_text(str(rows))
    return path


def add_cross_scoring(url: str, per_assignment: int = 40) -> int:
    """Cross-scoring on top of the consultant data in the database at ``url``; returns the number of rows."""
    app = make_app(url)
    with app.app_context():
        from survey.extensions import db
        from survey.models import Campaign

        campaign = db.session.scalar(sa.select(Campaign).where(Campaign.code == CAMPAIGN))
        total = insert_cross_scoring(campaign, per_assignment)
        db.session.commit()
        db.engine.dispose()
    return total


def insert_cross_scoring(campaign: Any, per_assignment: int = 40, raters_per_unit: int = 2,
                         seed_value: int = 7) -> int:
    """Each unit scored by two other units, ``per_assignment`` interviews each; the caller commits.

    Some auditing units are planted as lenient or harsh, as in real cross-scoring. Uses the
    batched insert the imports and the demo use; returns the number of rows.
    """
    from survey.extensions import db
    from survey.models import Assignment, Channel, CustomerGroup, Source, Unit
    from survey.services.imports import Pseudonymiser, ResponseBatch, insert_responses

    units = list(db.session.scalars(sa.select(Unit).order_by(Unit.code)))
    all_codes = unit_codes()
    levels = dict(zip(all_codes, unit_levels(all_codes), strict=True))
    rng = np.random.default_rng(seed_value)
    leniency = rng.normal(0.0, 0.3, len(units))
    n_items = len(campaign.questionnaire.items)
    pseudonymise = Pseudonymiser()
    total = 0
    for ratee_position, ratee in enumerate(units):
        for step in range(1, raters_per_unit + 1):
            rater_position = (ratee_position + step * 5) % len(units)
            if rater_position == ratee_position:
                continue
            rater = units[rater_position]
            assignment = Assignment(campaign_id=campaign.id, rater_unit_id=rater.id, ratee_unit_id=ratee.id,
                                    quota=per_assignment)
            db.session.add(assignment)
            db.session.flush()
            level = np.full(per_assignment, levels.get(ratee.code, 7.5) + leniency[rater_position])
            batch = ResponseBatch(
                unit_ids=[ratee.id] * per_assignment,
                customer_groups=[CustomerGroup.HOUSEHOLD.value] * per_assignment,
                respondent_ids=[pseudonymise(f"X-{rater.code}-{ratee.code}-{k}") for k in range(per_assignment)],
                answers=answer_matrix(rng, level, n_items),
                rater_unit_ids=[rater.id] * per_assignment,
                assignment_ids=[assignment.id] * per_assignment,
            )
            insert_responses(campaign, batch, source=Source.CROSS, channel=Channel.INTERVIEW)
            total += per_assignment
    return total
