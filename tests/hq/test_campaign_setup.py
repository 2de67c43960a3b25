"""HQ creates a campaign through the page (default or uploaded questionnaire) and edits its settings."""

from __future__ import annotations

import html
import io

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import Campaign, CampaignStatus, Questionnaire, Role, Source
from survey.questionnaire import default_questionnaire_text

from .conftest import campaign_by_code, count, events

SMALL_TOML = """
code = "mini-2018"
title = { vi = "Khảo sát rút gọn", en = "Short survey" }
scale = { min = 1, max = 5 }

[[dimensions]]
code = "supply"
title = { vi = "Cung cấp điện", en = "Power supply" }
  [[dimensions.items]]
  code = "supply_stability"
  text = { vi = "Điện ổn định", en = "Stable supply" }
"""


def new_fields(**overrides):
    fields = {"code": "2018", "name_vi": "Khảo sát 2018", "name_en": "Survey 2018", "questionnaire": "default",
              "target": "7.5", "margin": "0.3", "starts_on": "2018-03-01", "ends_on": "2018-06-30",
              "previous_campaign": "", "web_source": "consultant", "household_share": "0.85"}
    return {**fields, **overrides}


def test_hq_creates_a_campaign_on_the_default_questionnaire(hq, make_units):
    make_units(2)
    page = hq.get("/hq/")
    assert 'href="/hq/campaigns/new"' in page.text
    response = hq.post("/hq/campaigns/new", new_fields())
    assert response.status_code == 303 and response.location.endswith("/hq/campaigns/2018/quotas")
    campaign = campaign_by_code("2018")
    assert campaign is not None
    assert (campaign.name_vi, campaign.target_score, campaign.margin, campaign.household_share) == (
        "Khảo sát 2018", 7.5, 0.3, 0.85)
    assert str(campaign.starts_on) == "2018-03-01" and str(campaign.ends_on) == "2018-06-30"
    assert campaign.web_source == Source.CONSULTANT
    assert campaign.questionnaire.code == "evn-csi" or len(campaign.questionnaire.items) >= 14
    [event] = events("campaign")
    assert event.action == "create" and event.actor.startswith("hq")


def test_hq_creates_a_campaign_on_an_uploaded_questionnaire_with_a_previous_campaign(hq, make_campaign):
    previous = make_campaign(code="2017", units=2)
    response = hq.post(
        "/hq/campaigns/new",
        new_fields(code="2018-mini", questionnaire="upload", target="4", margin="0.5", previous_campaign="2017",
                   web_source="cross", questionnaire_file=(io.BytesIO(SMALL_TOML.encode()), "mini.toml")),
        content_type="multipart/form-data",
    )
    assert response.status_code == 303, response.text
    campaign = campaign_by_code("2018-mini")
    assert campaign.questionnaire.code == "mini-2018"
    assert [item.code for item in campaign.questionnaire.items] == ["supply_stability"]
    assert campaign.previous_campaign_id == previous.id
    assert campaign.web_source == Source.CROSS


@pytest.mark.parametrize(
    ("toml", "place", "reason"),
    [
        (SMALL_TOML.replace('code = "supply_stability"', 'code = "Supply Stability"'),
         "dimensions[0].items[0].code", "lower-case"),
        (SMALL_TOML.replace("scale = { min = 1, max = 5 }", "scale = { min = 5, max = 1 }"), "scale", "min < max"),
        (SMALL_TOML.replace('[[dimensions.items]]', '[[dimensions.items]]\n  colour = "blue"'),
         "dimensions[0].items[0].colour", "unknown key"),
        ("code = \"x\"\ntitle = [\nscale = 1\n", "not valid TOML", "line 3, column 1"),
    ],
)
def test_a_malformed_questionnaire_is_refused_with_place_and_reason_and_nothing_stored(hq, make_units, toml, place,
                                                                                      reason):
    make_units(1)
    before = (count(Campaign), count(Questionnaire))
    response = hq.post(
        "/hq/campaigns/new",
        new_fields(code="bad-2018", questionnaire="upload", questionnaire_file=(io.BytesIO(toml.encode()), "q.toml")),
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    page = html.unescape(response.text)
    assert place in page and reason in page
    assert 'class="field-error"' in page
    assert (count(Campaign), count(Questionnaire)) == before == (0, 0)
    assert events("campaign") == []


@pytest.mark.parametrize(
    ("fields", "field_message"),
    [
        ({"code": "Bad Code"}, "lower-case"),
        ({"code": ""}, "This field is required"),
        ({"target": "abc"}, "Not a valid float value"),
        ({"target": "nan"}, "ordinary number"),
        ({"margin": "0"}, "0.01"),
        ({"margin": "-1"}, "0.01"),
        ({"household_share": "1.5"}, "between 0"),
        ({"starts_on": "2018-06-30", "ends_on": "2018-03-01"}, "last day must not come before"),
        ({"questionnaire": "upload"}, "Choose the questionnaire file"),
        ({"previous_campaign": "no-such"}, "Not a valid choice"),
        ({"web_source": "customers"}, "Not a valid choice"),
    ],
)
def test_bad_campaign_fields_are_refused_and_nothing_is_stored(hq, make_units, fields, field_message):
    make_units(1)
    response = hq.post("/hq/campaigns/new?lang=en", new_fields(**fields))
    assert response.status_code == 400
    assert field_message in response.text
    assert count(Campaign) == 0 and count(Questionnaire) == 0


def test_a_duplicate_code_or_a_target_off_the_scale_is_refused(hq, make_campaign):
    make_campaign(code="2018", units=1)
    response = hq.post("/hq/campaigns/new", new_fields())
    assert response.status_code == 400 and "Đã có chiến dịch với mã này" in response.text
    response = hq.post(
        "/hq/campaigns/new?lang=en",
        new_fields(code="mini", questionnaire="upload", target="7.5",
                   questionnaire_file=(io.BytesIO(SMALL_TOML.encode()), "q.toml")),
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and "scale, 1 to 5" in response.text
    assert count(Campaign) == 1


def settings_fields(**overrides):
    fields = {"name_vi": "Khảo sát 2017 (sửa)", "name_en": "Survey 2017 (edited)", "status": "draft",
              "target": "7.8", "margin": "0.25", "starts_on": "2017-04-01", "ends_on": "2017-09-30",
              "previous_campaign": "", "household_share": ""}
    return {**fields, **overrides}


def test_settings_are_edited_and_recorded(hq, make_campaign):
    earlier = make_campaign(code="2016", units=2)
    campaign = make_campaign(code="2017", units=0)
    page = hq.get("/hq/campaigns/2017/settings")
    assert page.status_code == 200 and 'value="Chiến dịch 2017"' in page.text
    response = hq.post("/hq/campaigns/2017/settings", settings_fields(previous_campaign="2016"))
    assert response.status_code == 303
    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign.id)
    assert (campaign.name_en, campaign.status, campaign.target_score, campaign.margin) == (
        "Survey 2017 (edited)", CampaignStatus.DRAFT, 7.8, 0.25)
    assert campaign.previous_campaign_id == earlier.id and campaign.household_share is None
    [event] = [e for e in events("campaign") if e.action == "edit"]
    assert event.before["target_score"] == 7.5 and event.after["target_score"] == 7.8
    assert event.after["status"] == "draft" and "code" not in event.after


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"status": "archived"}, "Not a valid choice"),
        ({"name_vi": ""}, "This field is required"),
        ({"ends_on": "2017-01-01"}, "last day must not come before"),
        ({"target": "11"}, "scale, 1 to 10"),
        ({"previous_campaign": "2017"}, "Not a valid choice"),  # itself
    ],
)
def test_bad_settings_change_nothing(hq, make_campaign, fields, message):
    make_campaign(code="2017", units=1)
    response = hq.post("/hq/campaigns/2017/settings?lang=en", settings_fields(**fields))
    assert response.status_code == 400 and message in response.text
    campaign = campaign_by_code("2017")
    assert campaign.status == CampaignStatus.OPEN and campaign.target_score == 7.5 and campaign.name_vi == "Chiến dịch 2017"
    assert events("campaign") == []


def test_a_campaign_cannot_follow_its_own_successor(hq, make_campaign):
    first = make_campaign(code="2016", units=1)
    second = make_campaign(code="2017", units=0, previous_campaign_id=first.id)
    response = hq.post("/hq/campaigns/2016/settings?lang=en", settings_fields(previous_campaign="2017"))
    assert response.status_code == 409 and "follows it" in response.text
    assert campaign_by_code("2016").previous_campaign_id is None and second.id


def test_the_questionnaire_changes_only_while_there_is_no_response(hq, make_campaign):
    from tests.crossscoring.conftest import answers_for
    from survey.models import Channel, CustomerGroup, Unit
    from survey.services.responses import submit_response

    campaign = make_campaign(code="2017", units=1)
    upload = {"questionnaire_file": (io.BytesIO(SMALL_TOML.encode()), "mini.toml")}
    response = hq.post("/hq/campaigns/2017/settings", settings_fields(target="4", **upload),
                       content_type="multipart/form-data")
    assert response.status_code == 303
    assert campaign_by_code("2017").questionnaire.code == "mini-2018"
    # With a response stored, the page says the questionnaire is fixed and refuses a new file.
    campaign = campaign_by_code("2017")
    unit = db.session.scalars(sa.select(Unit)).first()
    submit_response(campaign=campaign, unit=unit, source=Source.CONSULTANT, channel=Channel.IMPORT,
                    customer_group=CustomerGroup.HOUSEHOLD, respondent_id="R1", answers=answers_for(campaign, 4),
                    actor="cli")
    db.session.commit()
    page = hq.get("/hq/campaigns/2017/settings?lang=en")
    assert "has responses, so its questionnaire can no longer change" in page.text
    other = default_questionnaire_text()
    response = hq.post("/hq/campaigns/2017/settings?lang=en",
                       settings_fields(target="4", questionnaire_file=(io.BytesIO(other.encode()), "evn.toml")),
                       content_type="multipart/form-data")
    assert response.status_code == 400 and "can no longer change" in response.text
    assert campaign_by_code("2017").questionnaire.code == "mini-2018"


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.MANAGER])
@pytest.mark.parametrize("path", ["/hq/campaigns/new", "/hq/campaigns/2017/settings", "/hq/campaigns/2017/quotas",
                                  "/hq/campaigns/2017/import"])
def test_other_roles_get_403(sign_in, make_campaign, role, path):
    campaign = make_campaign(code="2017", units=1)
    unit = db.session.scalars(sa.select(__import__("survey.models", fromlist=["Unit"]).Unit)).first()
    browser = sign_in(role, unit)
    assert browser.get(path).status_code == 403
    assert browser.post(path, {"code": "x", "target": "7"}).status_code == 403
    assert count(Campaign) == 1 and campaign.id
