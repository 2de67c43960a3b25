"""Forms of the HQ workspace."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, IntegerField, SelectChoice, SelectField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from ..models import ReviewState
from ..services.assignments import MAX_QUOTA

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
