"""Generated bad files: response CSVs (service and web upload), the units CSV, questionnaire TOML (parser and CLI).

A file is taken whole or refused whole: after a refusal no row has changed, and every problem
names its place; after an import, exactly the file's rows are stored.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from survey.questionnaire import QuestionnaireError, default_questionnaire_text, parse_questionnaire
from survey.services.imports import ImportFileError, import_consultant, import_cross
from survey.services.units import UnitsFileError, read_units_csv

from .helpers import FIGURES, World, row_counts
from .strategies import fuzz_settings, mutated_csv, mutated_toml
from .test_fuzz_forms import check_refusal, outcome
from .helpers import fingerprint

GROUPS = st.sampled_from(["household", "business"])
#: An answer cell: a score, empty (not applicable), or something else.
CELL = st.one_of(st.integers(1, 10).map(str), st.just(""))


def consultant_rows(world: World) -> st.SearchStrategy[list[str]]:
    return st.tuples(st.sampled_from([u.code for u in world.units]), st.uuids().map(lambda u: "KH" + u.hex[:14]),
                     GROUPS, *[CELL for _ in world.item_codes]).map(list)


def cross_rows(world: World) -> st.SearchStrategy[list[str]]:
    pairs = [(world.open_assignment.rater_unit.code, world.open_assignment.ratee_unit.code),
             (world.reopened_assignment.rater_unit.code, world.reopened_assignment.ratee_unit.code)]
    return st.tuples(st.sampled_from(pairs), st.uuids().map(lambda u: "PA" + u.hex[:12]), GROUPS,
                     *[CELL for _ in world.item_codes]).map(lambda t: [*t[0], *t[1:]])


def _check_import(importer: Any, world: World, data: bytes) -> None:
    before = row_counts()
    try:
        result = importer(world.campaign, io.BytesIO(data), actor="fuzz", file_name="fuzz.csv")
    except ImportFileError as refused:
        assert refused.problems, "a refusal without a reason"
        assert all(str(problem).strip() for problem in refused.problems)
        assert row_counts() == before, "a refused file left rows behind"
        outcome(False)
        return
    outcome(True)
    after = row_counts()
    assert after["response"] - before["response"] == result.rows > 0
    assert after["audit_event"] - before["audit_event"] == 1


@fuzz_settings(100)
@given(data=st.data())
def test_consultant_import_junk(world: World, data: st.DataObject) -> None:
    FIGURES["fuzz: consultant CSV import (service)"] += 1
    header = ["unit_code", "respondent_id", "customer_group", *world.item_codes]
    _check_import(import_consultant, world, data.draw(mutated_csv(header, consultant_rows(world))))


@fuzz_settings(100)
@given(data=st.data())
def test_cross_import_junk(world: World, data: st.DataObject) -> None:
    FIGURES["fuzz: cross CSV import (service)"] += 1
    header = ["rater_unit", "ratee_unit", "respondent_id", "customer_group", *world.item_codes]
    _check_import(import_cross, world, data.draw(mutated_csv(header, cross_rows(world))))


@fuzz_settings(60)
@given(data=st.data())
def test_paper_interview_upload_junk(world: World, signed_in: Any, data: st.DataObject) -> None:
    FIGURES["fuzz: paper-interview CSV upload (web)"] += 1
    header = ["rater_unit", "ratee_unit", "respondent_id", "customer_group", "interview_id", *world.item_codes]
    pair = [world.open_assignment.rater_unit.code, world.open_assignment.ratee_unit.code]
    good = st.tuples(st.uuids().map(lambda u: "PA" + u.hex[:12]), GROUPS, st.just(""),
                     *[CELL for _ in world.item_codes]).map(lambda t: [*pair, *t])
    body = data.draw(mutated_csv(header, good))
    name = data.draw(st.sampled_from(["paper.csv", "", "x.xlsx", "../../etc/passwd", "ảnh.csv"]))
    client, csrf = signed_in["auditor"]
    before, counts = fingerprint(), row_counts()
    response = client.post(f"/audit/assignments/{world.open_assignment.id}/upload",
                           data={"csrf_token": csrf, "file": (io.BytesIO(body), name)}, content_type="multipart/form-data")
    check_refusal(response, before, f"upload {name!r} {body[:200]!r}")
    if response.status_code == 303:
        assert row_counts()["response"] > counts["response"]


@fuzz_settings(60)
@given(data=st.data())
def test_hq_consultant_upload_junk(world: World, signed_in: Any, data: st.DataObject) -> None:
    FIGURES["fuzz: consultant CSV upload (HQ web page)"] += 1
    header = ["unit_code", "respondent_id", "customer_group", *world.item_codes]
    body = data.draw(mutated_csv(header, consultant_rows(world)))
    name = data.draw(st.sampled_from(["tuvan.csv", "", "x.xlsx", "../../etc/passwd", "dữ liệu.csv"]))
    kind = data.draw(st.sampled_from(["consultant", "cross", "", "other"]))
    client, csrf = signed_in["hq"]
    before, counts = fingerprint(), row_counts()
    response = client.post(f"/hq/campaigns/{world.campaign.code}/import",
                           data={"csrf_token": csrf, "kind": kind, "file": (io.BytesIO(body), name)},
                           content_type="multipart/form-data")
    check_refusal(response, before, f"upload {kind!r} {name!r} {body[:200]!r}")
    if response.status_code == 303:
        assert row_counts()["response"] > counts["response"]


@fuzz_settings(150)
@given(data=st.data())
def test_units_file_junk(world: World, data: st.DataObject) -> None:
    FIGURES["fuzz: units CSV (reader)"] += 1
    good = st.tuples(st.sampled_from(["bac-giang", "lao-cai", "yen-bai", "x-y"]), st.text(min_size=1, max_size=20),
                     st.text(min_size=1, max_size=20), st.integers(0, 10**7).map(str)).map(list)
    body = data.draw(mutated_csv(["unit_code", "name_vi", "name_en", "households"], good))
    try:
        rows = read_units_csv(body)
    except UnitsFileError as refused:
        assert refused.problems and all(p.strip() for p in refused.problems)
        outcome(False)
        return
    outcome(True)
    assert rows and all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", row.code) for row in rows)


@fuzz_settings(40)
@given(data=st.data())
def test_units_import_command_junk(world: World, runner: Any, tmp_path_factory: Any, data: st.DataObject) -> None:
    FIGURES["fuzz: flask units import"] += 1
    good = st.tuples(st.sampled_from([u.code for u in world.units]), st.text(min_size=1, max_size=20),
                     st.text(min_size=1, max_size=20), st.integers(0, 10**7).map(str)).map(list)
    path = tmp_path_factory.mktemp("units") / "units.csv"
    path.write_bytes(data.draw(mutated_csv(["unit_code", "name_vi", "name_en", "households"], good)))
    before = fingerprint()
    result = runner.invoke(args=["units", "import", str(path)])
    _check_command(result)
    if result.exit_code != 0:
        assert fingerprint() == before


def _check_command(result: Any) -> None:
    """A command either succeeds or exits 1 with a message; it never ends in a traceback."""
    assert result.exit_code in (0, 1), (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 1:
        assert result.output.startswith("Error: ") and len(result.output.strip()) > len("Error: ")
    outcome(result.exit_code == 0)


TOML = default_questionnaire_text()


@fuzz_settings(200)
@given(text=mutated_toml(TOML))
def test_questionnaire_parser_junk(text: str) -> None:
    FIGURES["fuzz: questionnaire TOML (parser)"] += 1
    try:
        spec = parse_questionnaire(text)
    except QuestionnaireError as refused:
        # "place: reason", e.g. "line 12: ..." or "dimensions[2].items[0].code: ..."
        assert re.match(r"^\S.*?: \S", str(refused)), str(refused)
        outcome(False)
        return
    outcome(True)
    assert spec.dimensions and all(d.items for d in spec.dimensions)


@fuzz_settings(50)
@given(text=mutated_toml(TOML), code=st.uuids().map(lambda u: "fz-" + u.hex[:8]))
def test_campaign_create_command_junk(world: World, runner: Any, tmp_path_factory: Any, text: str, code: str) -> None:
    FIGURES["fuzz: flask campaign create --questionnaire"] += 1
    path: Path = tmp_path_factory.mktemp("toml") / "questionnaire.toml"
    path.write_text(text, "utf-8")
    before, counts = fingerprint(), row_counts()
    result = runner.invoke(args=["campaign", "create", code, "--questionnaire", str(path)])
    _check_command(result)
    if result.exit_code == 1:
        assert fingerprint() == before, "a refused questionnaire left rows behind"
        assert len(result.output.strip().splitlines()) == 1, result.output
    else:
        assert row_counts()["campaign"] == counts["campaign"] + 1
