"""HQ: setting up a campaign — create it, change its settings, plan and set its per-unit quotas."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage
from wtforms import SelectChoice

from ..extensions import db
from ..models import Campaign, CampaignStatus, Source
from ..policy import Action, authorize
from ..questionnaire import QuestionnaireError, QuestionnaireSpec, parse_questionnaire
from ..services.campaigns import CampaignError, create_campaign, has_responses, update_campaign
from ..services.quotas import QuotaError, plan_sample_size, save_quotas, unit_quotas
from . import bp
from .common import acting_user, campaign_or_404
from .forms import CampaignFieldsForm, CampaignSettingsForm, NewCampaignForm, SampleSizeForm, make_quota_form


def _locale() -> str:
    return str(get_locale() or "vi")


def _previous_choices(form: CampaignFieldsForm, exclude: Campaign | None = None) -> dict[str, Campaign]:
    """Fill the previous-campaign select with every other campaign; return them by code."""
    campaigns = {
        c.code: c
        for c in db.session.scalars(sa.select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc()))
        if exclude is None or c.id != exclude.id
    }
    form.previous_campaign.choices = [SelectChoice("", _("None")), *(
        SelectChoice(code, f"{code} · {c.name(_locale())}") for code, c in campaigns.items()
    )]
    return campaigns


def _uploaded_questionnaire(form: Any) -> tuple[QuestionnaireSpec | None, bool]:
    """The questionnaire file of the form, parsed; (None, False) after putting the error on the field."""
    upload = request.files.get("questionnaire_file")
    if not isinstance(upload, FileStorage) or not upload.filename:
        return None, True
    try:
        return parse_questionnaire(upload.stream.read()), True
    except QuestionnaireError as exc:
        form.questionnaire_file.errors = [_("The questionnaire was refused, nothing was stored: %(problem)s",
                                            problem=str(exc))]
        return None, False


@bp.route("/campaigns/new", methods=["GET", "POST"])
def new_campaign() -> Response | tuple[str, int]:
    """Create a campaign on the default EVN questionnaire or an uploaded one, checked before anything is stored."""
    authorize(Action.MANAGE_CAMPAIGNS)
    form = NewCampaignForm()
    campaigns = _previous_choices(form)
    if not form.is_submitted():
        return render_template("hq/campaign_new.html", form=form), 200
    valid = form.validate()
    spec: QuestionnaireSpec | None = None
    if form.questionnaire.data == "upload":
        spec, ok = _uploaded_questionnaire(form)
        if ok and spec is None:
            form.questionnaire_file.errors = [_("Choose the questionnaire file, or pick the default questionnaire.")]
        valid = valid and spec is not None
    if valid and db.session.scalar(sa.select(Campaign.id).where(Campaign.code == form.code.data)) is not None:
        form.code.errors = [_("A campaign with this code exists already; choose another code.")]
        valid = False
    if valid and spec is not None and not spec.scale_min <= form.target.data <= spec.scale_max:
        form.target.errors = [_("The target must lie on the questionnaire's scale, %(low)s to %(high)s.",
                                low=spec.scale_min, high=spec.scale_max)]
        valid = False
    if not valid:
        return render_template("hq/campaign_new.html", form=form), 400
    try:
        campaign = create_campaign(
            form.code.data,
            questionnaire=spec,
            name_vi=form.name_vi.data or None,
            name_en=form.name_en.data or None,
            target=form.target.data,
            margin=form.margin.data,
            starts_on=form.starts_on.data,
            ends_on=form.ends_on.data,
            household_share=form.household_share.data,
            previous_campaign=campaigns.get(form.previous_campaign.data or ""),
            web_source=Source(form.web_source.data),
            user=acting_user(),
        )
    except CampaignError as exc:
        db.session.rollback()
        flash(_("The campaign was not created: %(problem)s", problem=str(exc)), "error")
        return render_template("hq/campaign_new.html", form=form), 409
    flash(_("Campaign %(code)s created. Set its quotas next.", code=campaign.code), "success")
    return redirect(url_for("hq.quotas", code=campaign.code), code=303)


@bp.route("/campaigns/<code>/settings", methods=["GET", "POST"])
def settings(code: str) -> Response | tuple[str, int]:
    """Change a campaign's names, target, margin, dates, status and previous campaign (and questionnaire, early on)."""
    campaign = campaign_or_404(code)
    authorize(Action.MANAGE_CAMPAIGNS, campaign)
    locked = has_responses(campaign)
    form = CampaignSettingsForm(
        data=None if request.method == "POST" else {
            "name_vi": campaign.name_vi,
            "name_en": campaign.name_en,
            "target": campaign.target_score,
            "margin": campaign.margin,
            "starts_on": campaign.starts_on,
            "ends_on": campaign.ends_on,
            "status": str(campaign.status),
            "previous_campaign": campaign.previous_campaign.code if campaign.previous_campaign else "",
            "household_share": campaign.household_share,
        }
    )
    campaigns = _previous_choices(form, exclude=campaign)

    def page(status: int) -> tuple[str, int]:
        return render_template("hq/campaign_settings.html", campaign=campaign, form=form, locked=locked), status

    if not form.is_submitted():
        return page(200)
    valid = form.validate()
    spec, ok = _uploaded_questionnaire(form)
    if spec is not None and locked:
        form.questionnaire_file.errors = [_("The campaign has responses, so its questionnaire can no longer change.")]
        ok = False
    scale = spec or campaign.questionnaire
    if valid and not scale.scale_min <= form.target.data <= scale.scale_max:
        form.target.errors = [_("The target must lie on the questionnaire's scale, %(low)s to %(high)s.",
                                low=scale.scale_min, high=scale.scale_max)]
        valid = False
    if not (valid and ok):
        return page(400)
    try:
        update_campaign(
            campaign,
            name_vi=form.name_vi.data,
            name_en=form.name_en.data,
            target=form.target.data,
            margin=form.margin.data,
            starts_on=form.starts_on.data,
            ends_on=form.ends_on.data,
            status=CampaignStatus(form.status.data),
            previous_campaign=campaigns.get(form.previous_campaign.data or ""),
            household_share=form.household_share.data,
            questionnaire=spec,
            user=acting_user(),
        )
    except CampaignError as exc:
        db.session.rollback()
        flash(_("The settings were not saved: %(problem)s", problem=str(exc)), "error")
        return page(409)
    flash(_("Settings saved."), "success")
    return redirect(url_for("hq.settings", code=campaign.code), code=303)


def _field_name(kind: str, unit_code: str) -> str:
    return f"{kind}_{unit_code.replace('-', '_')}"


@bp.route("/campaigns/<code>/quotas", methods=["GET", "POST"])
def quotas(code: str) -> Response | tuple[str, int]:
    """Per-unit quotas of both programmes, with the sample-size helper that can fill them."""
    campaign = campaign_or_404(code)
    authorize(Action.MANAGE_CAMPAIGNS, campaign)
    rows = unit_quotas(campaign, _locale())
    form_class = make_quota_form([row.unit_code for row in rows])
    helper = SampleSizeForm(request.args)
    if helper.difference.data is None and "difference" not in request.args:
        helper.difference.data = campaign.margin
    status = 200
    plan = None
    if helper.validate():
        plan = plan_sample_size(
            campaign,
            difference=helper.difference.data if helper.difference.data is not None else campaign.margin,
            power=helper.power.data if helper.power.data is not None else 0.8,
            alpha=helper.alpha.data if helper.alpha.data is not None else 0.05,
            consultant_n=helper.consultant_n.data,
        )
    else:
        status = 400
    if request.method == "POST":
        form = form_class()
        if form.validate_on_submit():
            values = {
                row.unit_id: (
                    form[_field_name("consultant", row.unit_code)].data,
                    form[_field_name("cross", row.unit_code)].data,
                )
                for row in rows
            }
            try:
                saved = save_quotas(campaign, values, acting_user())
            except QuotaError as exc:
                db.session.rollback()
                flash(_("Nothing was saved: %(problem)s", problem=str(exc)), "error")
                status = 409
            else:
                flash(_("Quotas saved: %(units)s units changed, %(assignments)s assignment quotas updated.",
                        units=saved.units, assignments=saved.assignments), "success")
                return redirect(url_for("hq.quotas", code=campaign.code), code=303)
        else:
            flash(_("Nothing was saved: correct the quotas marked below."), "error")
            status = 400
    else:
        data: dict[str, Any] = {}
        fill = request.args.get("fill") == "1" and plan is not None and plan.cross_n is not None
        for row in rows:
            data[_field_name("consultant", row.unit_code)] = (
                plan.consultant_quota if fill and plan is not None else row.consultant_quota
            )
            data[_field_name("cross", row.unit_code)] = plan.cross_n if fill and plan is not None else row.cross_quota
        form = form_class(formdata=None, data=data)
        if fill:
            flash(_("Every unit's quotas are filled in from the helper below. Check them, then save."), "success")
    return (
        render_template(
            "hq/quotas.html",
            campaign=campaign,
            rows=[(row, form[_field_name("consultant", row.unit_code)], form[_field_name("cross", row.unit_code)])
                  for row in rows],
            form=form,
            helper=helper,
            plan=plan,
            any_assignments=any(row.assignments for row in rows),
            closed=campaign.status == CampaignStatus.CLOSED,
        ),
        status,
    )
