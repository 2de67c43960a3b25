"""`flask campaign create CODE --questionnaire FILE.toml …`: validated, audited, nothing stored on error."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import AuditEvent, Campaign, CampaignStatus, Questionnaire
from survey.questionnaire import default_questionnaire_text, parse_questionnaire

DEFAULT = default_questionnaire_text()


def counts() -> tuple[int, int]:
    return (
        db.session.scalar(sa.select(sa.func.count()).select_from(Questionnaire)),
        db.session.scalar(sa.select(sa.func.count()).select_from(Campaign)),
    )


def nth_text_vi_removed(text: str, dimension: int, item: int) -> str:
    """The default questionnaire with ``vi`` taken out of one item's text."""
    blocks = text.split("[[dimensions]]")
    items = blocks[dimension + 1].split("[[dimensions.items]]")
    items[item + 1] = re.sub(r'text = \{ vi = "[^"]*", ', "text = { ", items[item + 1], count=1)
    blocks[dimension + 1] = "[[dimensions.items]]".join(items)
    return "[[dimensions]]".join(blocks)


def test_create_with_the_default_questionnaire(runner):
    result = runner.invoke(args=["campaign", "create", "2017"])
    assert result.exit_code == 0, result.output
    items = sum(len(d.items) for d in parse_questionnaire(DEFAULT).dimensions)
    assert f"Opened campaign 2017 on questionnaire evn-csi-2017 v1 ({items} items)" in result.output
    campaign = db.session.scalar(sa.select(Campaign))
    assert (campaign.code, campaign.target_score, campaign.margin, campaign.status) == ("2017", 7.5, 0.3,
                                                                                        CampaignStatus.OPEN)
    assert campaign.name_vi == "Khảo sát mức độ hài lòng khách hàng 2017"
    assert len(campaign.questionnaire.dimensions) == 7
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.entity == "campaign"))
    assert (event.action, event.entity_id, event.actor) == ("create", "2017", "cli")
    assert event.after["questionnaire"] == "evn-csi-2017 v1"


def test_create_with_every_option_and_a_questionnaire_file(runner, tmp_path):
    path = tmp_path / "q.toml"
    path.write_text(DEFAULT.replace('code = "evn-csi-2017"', 'code = "evn-csi-2018"'), encoding="utf-8")
    result = runner.invoke(args=[
        "campaign", "create", "2018-pilot", "--questionnaire", str(path), "--target", "7.8", "--margin", "0.25",
        "--name-vi", "Thí điểm 2018", "--name-en", "Pilot 2018", "--starts", "2018-03-01", "--ends", "2018-11-30",
        "--household-share", "0.85",
    ])
    assert result.exit_code == 0, result.output
    campaign = db.session.scalar(sa.select(Campaign))
    assert (campaign.target_score, campaign.margin, campaign.name_vi, campaign.name_en) == (
        7.8, 0.25, "Thí điểm 2018", "Pilot 2018")
    assert (campaign.starts_on, campaign.ends_on) == (dt.date(2018, 3, 1), dt.date(2018, 11, 30))
    assert campaign.household_share == 0.85
    assert campaign.questionnaire.code == "evn-csi-2018"


def test_the_same_file_twice_reuses_the_stored_version(runner, tmp_path):
    path = tmp_path / "q.toml"
    path.write_text(DEFAULT, encoding="utf-8")
    assert runner.invoke(args=["campaign", "create", "a", "--questionnaire", str(path)]).exit_code == 0
    assert runner.invoke(args=["campaign", "create", "b", "--questionnaire", "default"]).exit_code == 0
    assert counts() == (1, 2)


MALFORMED = [
    ("toml syntax", DEFAULT.replace('code = "evn-csi-2017"', 'code = "evn-csi-2017'), "not valid TOML"),
    (
        "missing title.vi",
        re.sub(r'^title = \{ vi = "[^"]*", ', "title = { ", DEFAULT, count=1, flags=re.M),
        "title.vi: missing",
    ),
    ("missing item text.vi", nth_text_vi_removed(DEFAULT, 2, 0), "dimensions[2].items[0].text.vi: missing"),
    (
        "duplicate item code",
        DEFAULT.replace('code = "supply_quality"', 'code = "supply_stability"'),
        "dimensions[0].items[1].code: 'supply_stability' is used by another item",
    ),
    ("weight zero", DEFAULT.replace("weight = 1.0", "weight = 0", 1), "dimensions[0].weight: must be a positive"),
    ("weight negative", DEFAULT.replace("weight = 1.0", "weight = -1.0", 1), "dimensions[0].weight"),
    ("scale min ≥ max", DEFAULT.replace("scale = { min = 1, max = 10 }", "scale = { min = 10, max = 10 }"),
     "scale: need 0 ≤ min < max"),
    ("unknown key", 'colour = "red"\n' + DEFAULT, "colour: unknown key"),
    (
        "empty dimensions",
        'code = "x"\ntitle = { vi = "Một", en = "One" }\nscale = { min = 1, max = 10 }\ndimensions = []\n',
        "dimensions: at least one",
    ),
    ("not utf-8", DEFAULT.encode("utf-8").replace("Cung cấp điện".encode(), b"Cung c\xe1p \xf0i\xean"),
     "not UTF-8"),
    ("reserved item code", DEFAULT.replace('code = "supply_stability"', 'code = "unit_code"'),
     "dimensions[0].items[0].code: 'unit_code' is reserved"),
]


@pytest.mark.parametrize(("content", "place"), [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED])
def test_a_malformed_questionnaire_is_refused_with_place_and_reason(runner, tmp_path, content, place):
    path = tmp_path / "q.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    result = runner.invoke(args=["campaign", "create", "2017", "--questionnaire", str(path)])
    assert result.exit_code != 0
    assert result.stdout == ""
    message = result.stderr.strip()
    assert "\n" not in message
    assert message.startswith(f"Error: {path}: ")
    assert place in message
    assert counts() == (0, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Năm 2017"], "is not valid"),
        (["2017/18"], "is not valid"),
        (["x" * 41], "is not valid"),
        (["2017", "--target", "11"], "outside the questionnaire's scale 1–10"),
        (["2017", "--target", "0.5"], "outside"),
        (["2017", "--target", "nan"], "outside"),
        (["2017", "--margin", "0"], "margin 0.0 must be a positive"),
        (["2017", "--margin", "-0.3"], "must be a positive"),
        (["2017", "--margin", "12"], "wider than the whole scale"),
        (["2017", "--starts", "2017-06-01", "--ends", "2017-05-31"], "ends (2017-05-31) before it starts"),
        (["2017", "--starts", "1/6/2017"], "--starts '1/6/2017' is not a date"),
        (["2017", "--household-share", "1.5"], "between 0 and 1"),
        (["2017", "--name-vi", "  "], "name-vi must be 1–200 characters"),
        (["2017", "--questionnaire", "/nowhere/q.toml"], "cannot read the file"),
    ],
)
def test_bad_options_are_refused_in_one_line(runner, args, message):
    result = runner.invoke(args=["campaign", "create", *args])
    assert result.exit_code == 1
    assert message in result.stderr
    assert "\n" not in result.stderr.strip()
    assert counts() == (0, 0)


def test_a_duplicate_code_is_refused(runner):
    assert runner.invoke(args=["campaign", "create", "2017"]).exit_code == 0
    result = runner.invoke(args=["campaign", "create", "2017", "--target", "8"])
    assert result.exit_code == 1
    assert "campaign 2017 already exists" in result.stderr
    assert counts() == (1, 1)
    assert db.session.scalar(sa.select(Campaign.target_score)) == 7.5


def test_a_changed_file_with_the_same_version_is_refused(runner, tmp_path):
    assert runner.invoke(args=["campaign", "create", "2017"]).exit_code == 0
    path = tmp_path / "q.toml"
    path.write_text(DEFAULT.replace("Cung cấp điện", "Cung ứng điện"), encoding="utf-8")
    result = runner.invoke(args=["campaign", "create", "2018", "--questionnaire", str(path)])
    assert result.exit_code == 1
    assert "already exists with different content" in result.stderr
    assert counts() == (1, 1)
