"""Forms of the HQ workspace."""

from __future__ import annotations

import math
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    Field,
    FloatField,
    Form,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from ..models import CampaignStatus, ReviewState, Source
from ..services.assignments import CONSULTANT_N, MAX_QUOTA
from ..services.campaigns import CAMPAIGN_CODE_MAX, CAMPAIGN_CODE_PATTERN
from ..services.quotas import MAX_UNIT_QUOTA

#: Review states with their labels, in the order HQ meets them.
REVIEW_LABELS = {
    ReviewState.RECEIVED: _l("Received"),
    ReviewState.HAS_ISSUES: _l("Has issues"),
    ReviewState.APPROVED: _l("Approved"),
    ReviewState.REJECTED: _l("Rejected"),
}


class GenerateAssignmentsForm(FlaskForm):
    raters_per_unit = IntegerField(
        _l("Auditing units per unit (k)"), default=2, validators=[InputRequired(), NumberRange(min=1, max=30)]
    )
    quota = IntegerField(
        _l("Interviews per assignment (quota)"),
        default=30,
        validators=[InputRequired(), NumberRange(min=0, max=MAX_QUOTA)],
    )
    seed = IntegerField(
        _l("Seed (optional, for a reproducible design)"), validators=[Optional(), NumberRange(min=0, max=2**31 - 1)]
    )
    due_on = DateField(_l("Due date (optional)"), validators=[Optional()])
    replace = BooleanField(_l("Replace the current assignments (only possible while no work has started)"))


class EditAssignmentForm(FlaskForm):
    rater_unit = SelectField(_l("Auditing unit"), validators=[DataRequired()])
    quota = IntegerField(_l("Quota"), validators=[InputRequired(), NumberRange(min=0, max=MAX_QUOTA)])
    due_on = DateField(_l("Due date"), validators=[Optional()])


class ReopenForm(FlaskForm):
    reason = TextAreaField(_l("Reason for reopening"), validators=[DataRequired(), Length(max=2000)])


class ReviewForm(FlaskForm):
    state = SelectField(
        _l("Review state"),
        choices=[SelectChoice(state.value, label) for state, label in REVIEW_LABELS.items()],
        validators=[DataRequired()],
    )
    comment = TextAreaField(_l("Comment (required for 'has issues' and 'rejected')"), validators=[Length(max=2000)])


class ApproveAssignmentForm(FlaskForm):
    comment = TextAreaField(_l("Comment (optional)"), validators=[Length(max=2000)])


class CountingForm(FlaskForm):
    count_only_approved = BooleanField(_l("Only approved cross responses count in scores"))


def finite(form: Any, field: Field) -> None:
    """Refuse 'nan' and 'inf', which a float field otherwise takes for numbers."""
    if field.data is not None and not math.isfinite(field.data):
        raise ValidationError(_l("Enter an ordinary number."))


STATUS_LABELS = {
    CampaignStatus.DRAFT: _l("draft"),
    CampaignStatus.OPEN: _l("open"),
    CampaignStatus.CLOSED: _l("closed"),
}
QUESTIONNAIRE_CHOICES = [
    SelectChoice("default", _l("The default EVN questionnaire (seven criteria)")),
    SelectChoice("upload", _l("Upload a questionnaire file (TOML)")),
]
WEB_SOURCE_CHOICES = [
    SelectChoice(Source.CONSULTANT.value, _l("Consultant programme")),
    SelectChoice(Source.CROSS.value, _l("Cross-scoring programme")),
]


class CampaignFieldsForm(FlaskForm):
    """The settings a campaign is created with and HQ may change later."""

    name_vi = StringField(_l("Name in Vietnamese"), validators=[Length(max=200)])
    name_en = StringField(_l("Name in English"), validators=[Length(max=200)])
    target = FloatField(
        _l("Target score"), default=7.5, validators=[InputRequired(), finite, NumberRange(min=0, max=100)]
    )
    margin = FloatField(
        _l("Margin (smallest difference that matters, in points)"),
        default=0.3,
        validators=[InputRequired(), finite, NumberRange(min=0.01, max=99)],
    )
    starts_on = DateField(_l("First day"), validators=[Optional()])
    ends_on = DateField(_l("Last day"), validators=[Optional()])
    previous_campaign = SelectField(_l("Previous campaign"), choices=[], default="")
    household_share = FloatField(
        _l("Share of households in the population (0–1, optional)"),
        validators=[Optional(), finite, NumberRange(min=0, max=1)],
    )

    def validate_ends_on(self, field: Field) -> None:
        if field.data and self.starts_on.data and field.data < self.starts_on.data:
            raise ValidationError(_l("The last day must not come before the first day."))


class NewCampaignForm(CampaignFieldsForm):
    code = StringField(
        _l("Code (e.g. 2017)"),
        validators=[
            DataRequired(),
            Length(max=CAMPAIGN_CODE_MAX),
            Regexp(CAMPAIGN_CODE_PATTERN, message=_l("Use lower-case letters, digits and '-' only, e.g. 2017.")),
        ],
    )
    questionnaire = RadioField(_l("Questionnaire"), choices=QUESTIONNAIRE_CHOICES, default="default")
    questionnaire_file = FileField(_l("Questionnaire file (TOML, UTF-8)"))
    web_source = SelectField(
        _l("Customers' web answers belong to"), choices=WEB_SOURCE_CHOICES, default=Source.CONSULTANT.value
    )


class CampaignSettingsForm(CampaignFieldsForm):
    name_vi = StringField(_l("Name in Vietnamese"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("Name in English"), validators=[DataRequired(), Length(max=200)])
    status = SelectField(
        _l("Campaign status"), choices=[SelectChoice(status.value, label) for status, label in STATUS_LABELS.items()]
    )
    questionnaire_file = FileField(_l("New questionnaire file (TOML, UTF-8; optional)"))


class SampleSizeForm(Form):
    """The sample-size helper's inputs, read from the query string (nothing is saved)."""

    difference = FloatField(
        _l("Difference to detect (points)"), validators=[Optional(), finite, NumberRange(min=0.01, max=99)]
    )
    power = FloatField(_l("Power"), default=0.8, validators=[Optional(), finite, NumberRange(min=0.5, max=0.999)])
    alpha = FloatField(
        _l("Significance level (alpha)"), default=0.05, validators=[Optional(), finite, NumberRange(min=0.001, max=0.2)]
    )
    consultant_n = IntegerField(
        _l("Consultant responses per unit (empty: as many as cross interviews)"),
        default=CONSULTANT_N,
        validators=[Optional(), NumberRange(min=2, max=MAX_UNIT_QUOTA)],
    )


def make_quota_form(unit_codes: list[str]) -> type[FlaskForm]:
    """A form with a consultant and a cross quota field per unit, named ``consultant-<code>`` and ``cross-<code>``."""

    class QuotaForm(FlaskForm):
        pass

    for code in unit_codes:
        for kind, label in (("consultant", _l("Consultant quota")), ("cross", _l("Cross quota"))):
            field = IntegerField(
                label,
                default=0,
                validators=[InputRequired(_l("Enter a whole number.")), NumberRange(min=0, max=MAX_UNIT_QUOTA)],
                name=f"{kind}-{code}",
            )
            setattr(QuotaForm, f"{kind}_{code.replace('-', '_')}", field)
    return QuotaForm


class ImportForm(FlaskForm):
    kind = RadioField(
        _l("Kind of file"),
        choices=[
            SelectChoice(Source.CONSULTANT.value, _l("Consultant interviews")),
            SelectChoice(Source.CROSS.value, _l("Cross-scoring interviews")),
        ],
        default=Source.CONSULTANT.value,
        validators=[DataRequired()],
    )
    file = FileField(_l("CSV file"))
