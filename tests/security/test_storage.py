"""What the database holds: hashes of passwords, API keys and survey tokens; keyed pseudonyms of respondents.

Each test searches every stored value of every table (JSON of answers and audit events
included) for the secret or the raw identifier, after the data went in through the real paths.
"""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from survey.extensions import db
from survey.models import ApiKey, Response, User
from survey.services.responses import pseudonymise
from survey.services.users import hash_api_key

from .helpers import FIGURES, PASSWORD, RAW_CONSULTANT_ID, RAW_INTERVIEW_ID, World, all_text_values, csrf_from


def occurrences(secret: str) -> list[str]:
    """Where ``secret`` appears in the database, as table.column."""
    return sorted({f"{table}.{column}" for table, column, text in all_text_values() if secret in text})


def test_passwords_are_stored_as_salted_slow_hashes(world: World) -> None:
    assert occurrences(PASSWORD) == []
    hashes = db.session.scalars(sa.select(User.password_hash)).all()
    assert len(hashes) >= 4
    assert all(h.startswith(("scrypt:", "pbkdf2:")) for h in hashes), hashes
    assert len(set(hashes)) == len(hashes), "the same password must hash differently for each account (salt)"


def test_api_keys_are_stored_as_hashes_only(world: World) -> None:
    assert occurrences(world.api_key) == []
    assert occurrences(world.api_key[12:40]) == [], "no part of the key beyond its shown prefix is stored"
    stored = db.session.scalars(sa.select(ApiKey)).one()
    assert stored.key_hash == hash_api_key(world.api_key)
    assert world.api_key.startswith(stored.prefix) and len(stored.prefix) <= 12


def test_survey_links_are_stored_as_hashes_only(world: World) -> None:
    for token in (world.token, world.used_token):
        assert occurrences(token) == []


def _answer_survey(client: Any, world: World) -> None:
    """A customer answers every page of the survey over HTTP."""
    for number, dimension in enumerate(world.campaign.questionnaire.dimensions, start=1):
        url = f"/s/{world.token}/{number}"
        token = csrf_from(client.get(url).get_data(as_text=True))
        answers = {item.code: "6" for item in dimension.items}
        response = client.post(url, data={**answers, "_action": "next", "csrf_token": token})
        assert response.status_code == 303, (number, response.status_code)


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def test_respondent_ids_are_pseudonymised_on_every_path(app: Any, world: World, browser: Any, runner: Any,
                                                        tmp_path: Path) -> None:
    codes = world.item_codes
    rater, ratee, b = world.open_assignment.rater_unit, world.open_assignment.ratee_unit, world.units[1]
    raw_ids: dict[str, str] = {}

    # Web: the customer's link.
    _answer_survey(browser(), world)
    invitation_id = db.session.scalar(sa.select(Response.invitation_id).where(Response.invitation_id.is_not(None))
                                      .order_by(Response.id.desc()).limit(1))
    raw_ids["web"] = f"invitation-{invitation_id}"

    # Interviews: the auditor's JSON queue and the HTML form.
    auditor = browser(world.auditor.email)
    entry = f"/audit/assignments/{world.open_assignment.id}/interviews/new"
    token = csrf_from(auditor.get(entry).get_data(as_text=True))
    raw_ids["interview json"] = "PA01HH0044001"
    sent = auditor.post(f"/audit/assignments/{world.open_assignment.id}/interviews.json", headers={"X-CSRFToken": token},
                        json={"interview_id": str(uuid.uuid4()), "customer_group": "household",
                              "respondent_id": raw_ids["interview json"], "answers": {c: 7 for c in codes}})
    assert sent.status_code == 201, sent.get_data(as_text=True)
    raw_ids["interview form"] = "PA01HH0044002"
    posted = auditor.post(entry, data={"csrf_token": token, "customer_group": "business", "interview_id": str(uuid.uuid4()),
                                       "respondent_id": raw_ids["interview form"], **{c: "8" for c in codes}})
    assert posted.status_code == 303, posted.get_data(as_text=True)[:500]

    # Paper interviews uploaded by the auditor.
    raw_ids["upload"] = "PA01HH0044003"
    upload = f"/audit/assignments/{world.open_assignment.id}/upload"
    file = _csv(["rater_unit", "ratee_unit", "respondent_id", "customer_group", *codes],
                [[rater.code, ratee.code, raw_ids["upload"], "household", *["9"] * len(codes)]])
    uploaded = auditor.post(upload, data={"csrf_token": token, "file": (io.BytesIO(file.encode()), "paper.csv")},
                            content_type="multipart/form-data")
    assert uploaded.status_code == 303, uploaded.get_data(as_text=True)[:500]

    # Imports from the command line.
    raw_ids["consultant import"] = "KH-IMPORT-0000042"
    path = tmp_path / "consultant.csv"
    path.write_text(_csv(["unit_code", "respondent_id", "customer_group", *codes],
                         [[b.code, raw_ids["consultant import"], "business", *["5"] * len(codes)]]), "utf-8")
    result = runner.invoke(args=["import", "consultant", world.campaign.code, str(path)])
    assert result.exit_code == 0, result.output
    raw_ids["cross import"] = "PA01HH0044004"
    path = tmp_path / "cross.csv"
    path.write_text(_csv(["rater_unit", "ratee_unit", "respondent_id", "customer_group", *codes],
                         [[rater.code, ratee.code, raw_ids["cross import"], "household", *["4"] * len(codes)]]), "utf-8")
    result = runner.invoke(args=["import", "cross", world.campaign.code, str(path)])
    assert result.exit_code == 0, result.output

    # And the world's own interview and consultant rows.
    raw_ids["world interview"] = RAW_INTERVIEW_ID
    raw_ids["world consultant"] = f"{RAW_CONSULTANT_ID}-{b.code}-1"

    for path_name, raw in raw_ids.items():
        FIGURES["table: respondent id path searched"] += 1
        found = occurrences(raw)
        if path_name == "web":
            # A web answer's "respondent id" is the invitation number, not a customer's: it is also the
            # idempotency key, by design. It still never appears as a respondent id.
            found.remove("response.idempotency_key")
        assert found == [], f"{path_name}: the raw id {raw!r} is stored in {found}"
        stored = db.session.scalar(sa.select(sa.func.count()).select_from(Response)
                                   .where(Response.respondent_id == pseudonymise(raw)))
        assert stored == 1, f"{path_name}: no response stored under the pseudonym of {raw!r}"
    # A keyed hash: the same id under another key is another pseudonym, so a dictionary of ids does not reverse it.
    app.config["PSEUDONYM_KEY"] = "another-key"
    assert pseudonymise(RAW_INTERVIEW_ID) not in {value for _t, c, value in all_text_values() if c == "respondent_id"}
