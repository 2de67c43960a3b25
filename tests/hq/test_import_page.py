"""The upload page: a good consultant file imports its rows; a bad one is refused whole with every bad row listed."""

from __future__ import annotations

import html
import io

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import Campaign, CampaignStatus, Channel, Source, Unit
from survey.services.assignments import create_assignments

from .conftest import answers, consultant_header, csv_bytes, events, responses


def upload(hq, code: str, data: bytes, kind: str = "consultant", name: str = "tuvan.csv", lang: str = "en"):
    return hq.post(f"/hq/campaigns/{code}/import?lang={lang}", {"kind": kind, "file": (io.BytesIO(data), name)},
                   content_type="multipart/form-data")


def problems_in(page: str) -> list[tuple[str, str, str]]:
    """(line, column, why) of every row of the problems table."""
    import re

    body = page.split('id="import-problems"', 1)[1].split("</table>", 1)[0].split("<tbody>", 1)[1]
    return [tuple(html.unescape(cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row))
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


@pytest.fixture
def campaign(make_campaign) -> Campaign:
    return make_campaign(code="2017", units=3)


def unit_codes() -> list[str]:
    return list(db.session.scalars(sa.select(Unit.code).order_by(Unit.code)))


def test_the_page_explains_the_file(hq, campaign):
    page = hq.get("/hq/campaigns/2017/import?lang=en")
    assert page.status_code == 200
    assert "unit_code, respondent_id, customer_group" in page.text
    assert ",".join(item.code for item in campaign.questionnaire.items) in page.text
    assert 'enctype="multipart/form-data"' in page.text


def test_a_good_consultant_file_imports_every_row(hq, campaign):
    a, b, c = unit_codes()
    rows = [[unit, f"KH{n:04d}", "household" if n % 3 else "business", *answers(campaign, 5 + n % 5)]
            for n, unit in enumerate([a, a, b, b, c, c, c])]
    response = upload(hq, "2017", csv_bytes(consultant_header(campaign), rows))
    assert response.status_code == 303 and response.location.endswith("/hq/campaigns/2017/progress")
    assert responses(campaign) == 7
    db.session.expire_all()
    from survey.models import Response

    stored = db.session.execute(sa.select(Response.source, Response.channel).distinct()).all()
    assert stored == [(Source.CONSULTANT, Channel.IMPORT)]
    [event] = [e for e in events("campaign") if e.action == "import"]
    assert event.actor == "hq.hq@evnnpc.vn" and event.after["rows"] == 7 and event.after["file"] == "tuvan.csv"
    page = hq.get("/hq/campaigns/2017/progress?lang=en")
    assert "7 responses imported from tuvan.csv" in page.text


def test_a_good_cross_file_imports_too(hq, campaign):
    assignments = create_assignments(campaign, 1, 5, seed=3)
    header = ["rater_unit", "ratee_unit", "respondent_id", "customer_group",
              *(item.code for item in campaign.questionnaire.items)]
    rows = [[x.rater_unit.code, x.ratee_unit.code, f"PA{n}{x.id}", "household", *answers(campaign)]
            for x in assignments for n in range(2)]
    assert upload(hq, "2017", csv_bytes(header, rows), kind="cross").status_code == 303
    assert responses(campaign) == 6


def _bad_cases(campaign: Campaign) -> dict[str, tuple[bytes, list[tuple[str, str, str]]]]:
    a, b, _c = unit_codes()
    codes = [item.code for item in campaign.questionnaire.items]
    header = consultant_header(campaign)
    good = answers(campaign)
    eleven = [11, *good[1:]]
    legacy = (f"{a},Lê Văn An,household," + ",".join(["7"] * len(codes)) + "\n").encode("cp1258")
    return {
        "unknown unit": (csv_bytes(header, [[a, "K1", "household", *good], ["ha-noi", "K2", "household", *good]]),
                         [("3", "unit_code", "unknown unit 'ha-noi'")]),
        "score 11": (csv_bytes(header, [[a, "K1", "household", *eleven]]), [("2", codes[0], "11 is outside 1–10")]),
        "missing column": (csv_bytes([h for h in header if h != "customer_group"], [[a, "K1", *good]]),
                           [("1", "–", "missing column(s) customer_group")]),
        "duplicate respondent id": (csv_bytes(header, [[a, "K1", "household", *good], [a, "K1", "business", *good]]),
                                    [("3", "respondent_id", "line 2")]),
        "wrong encoding": (csv_bytes(header, [[a, "K1", "household", *good]]) + legacy,
                           [("3", "–", "not UTF-8")]),
        "several": (
            csv_bytes(header, [
                [a, "K1", "household", *good],  # 2: good
                ["ha-noi", "K2", "household", *good],  # 3: unknown unit
                [b, "K3", "household", *eleven],  # 4: score 11
                [a, "K1", "business", *good],  # 5: duplicate of line 2
                [b, "K5", "household", *good],  # 6: good
                [b, "K6", "household"],  # 7: answers' columns missing
            ]),
            [("3", "unit_code", "unknown unit"), ("4", codes[0], "11 is outside"), ("5", "respondent_id", "line 2"),
             ("7", "–", "3 fields, but the header has")],
        ),
    }


@pytest.mark.parametrize("case", ["unknown unit", "score 11", "missing column", "duplicate respondent id",
                                  "wrong encoding", "several"])
def test_a_bad_file_is_refused_whole_with_every_bad_row_listed(hq, campaign, case):
    data, expected = _bad_cases(campaign)[case]
    response = upload(hq, "2017", data)
    assert response.status_code == 422
    assert "The file was not imported: nothing was stored." in response.text
    listed = problems_in(response.text)
    assert [(line, column) for line, column, _why in listed] == [(line, column) for line, column, _ in expected]
    for (_l, _c, why), (_el, _ec, expected_why) in zip(listed, expected, strict=True):
        assert expected_why in why
    assert responses() == 0
    assert [e for e in events("campaign") if e.action == "import"] == []


def test_the_problems_are_listed_in_vietnamese(hq, campaign):
    """Vietnamese first: each reason is translated, with the file's own values in it."""
    data, _expected = _bad_cases(campaign)["several"]
    response = upload(hq, "2017", data, lang="vi")
    assert response.status_code == 422
    assert "nothing was stored" not in response.text
    whys = [why for _line, _column, why in problems_in(response.text)]
    assert whys == ["không có đơn vị 'ha-noi'", "11 nằm ngoài khoảng 1–10",
                    "trùng mã người trả lời của cùng đơn vị với dòng 2",
                    f"dòng có 3 trường, nhưng dòng tiêu đề có {len(consultant_header(campaign))}"]


def test_a_closed_campaign_takes_no_file_and_the_form_needs_a_file(hq, campaign):
    a = unit_codes()[0]
    assert hq.post("/hq/campaigns/2017/import?lang=en", {"kind": "consultant"}).status_code == 400
    response = upload(hq, "2017", b"", kind="survey")
    assert response.status_code == 400 and "Not a valid choice" in response.text
    campaign.status = CampaignStatus.CLOSED
    db.session.commit()
    response = upload(hq, "2017", csv_bytes(consultant_header(campaign), [[a, "K1", "household", *answers(campaign)]]))
    assert response.status_code == 422 and "is closed" in response.text
    assert responses() == 0


def test_a_file_over_the_size_limit_is_refused(app, hq, campaign):
    app.config["MAX_CONTENT_LENGTH"] = 2048
    response = upload(hq, "2017", b"x" * 4096)
    assert response.status_code == 413
    assert responses() == 0
