"""The interview form, built from the campaign's questionnaire: one radio field per item.

The form renders the page and gathers what was posted; the rules live in
``survey.services.interviews`` so the HTML form and the offline queue's JSON are checked alike.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import Field, HiddenField, RadioField, SelectChoice, StringField

from ..models import CustomerGroup, Questionnaire, Response
from ..services.interviews import NOT_APPLICABLE

#: Item fields are attributes ``item_<code>`` so an item code never shadows a form attribute;
#: their HTML name is the bare item code, as in the CSV template and the JSON.
FIELD_PREFIX = "item_"
#: Posted names that are not answers.
META_FIELDS = {"csrf_token", "customer_group", "respondent_id", "interview_id"}

GROUP_CHOICES = [
    SelectChoice(CustomerGroup.HOUSEHOLD.value, _l("Household")),
    SelectChoice(CustomerGroup.BUSINESS.value, _l("Business")),
]


class InterviewForm(FlaskForm):
    """One interviewed customer; make_interview_form adds the questionnaire's items."""

    customer_group = RadioField(_l("Customer group"), choices=GROUP_CHOICES)
    respondent_id = StringField(_l("Customer's account number"))
    interview_id = HiddenField()

    item_codes: tuple[str, ...] = ()
    #: Items grouped by dimension, for headings: (dimension, [field, …]).
    dimension_items: tuple[tuple[Any, tuple[str, ...]], ...] = ()
    editing = False

    def item_field(self, code: str) -> Field:
        """The radio field of one item."""
        return self[FIELD_PREFIX + code]

    def sections(self) -> list[tuple[Any, list[Field]]]:
        """The questionnaire's dimensions with their item fields, in order."""
        return [(dimension, [self.item_field(code) for code in codes]) for dimension, codes in self.dimension_items]

    def submission(self) -> dict[str, Any]:
        """What was posted, shaped as the interview service expects; unknown fields stay in to be refused."""
        answers: dict[str, Any] = {}
        for name in request.form:
            if name not in META_FIELDS:
                values = request.form.getlist(name)
                # Two values for one item is a forged form: passed on as a list, which the rules refuse.
                answers[name] = values[0] if len(values) == 1 else values
        if self.editing:
            return {"answers": answers}
        return {
            "interview_id": request.form.get("interview_id", ""),
            "customer_group": request.form.get("customer_group", ""),
            "respondent_id": request.form.get("respondent_id", ""),
            "answers": answers,
        }

    def show_errors(self, errors: dict[str, str]) -> None:
        """Attach the service's messages to their fields; anything else becomes a form-level message."""
        for name, message in errors.items():
            attribute = FIELD_PREFIX + name if name in self.item_codes else name
            if attribute in self._fields and attribute != "csrf_token":
                self[attribute].errors = [message]
            else:
                self.form_errors.append(message)

    def field_errors(self) -> list[tuple[str, str, str]]:
        """(anchor id, label, message) for the error summary, in page order."""
        listed = []
        for name in ("customer_group", "respondent_id", *(FIELD_PREFIX + code for code in self.item_codes)):
            if name in self._fields and self[name].errors:
                field = self[name]
                anchor = f"{field.id}-0" if isinstance(field, RadioField) else field.id
                listed.append((anchor, str(field.label.text), field.errors[0]))
        return listed


def make_interview_form(questionnaire: Questionnaire, locale: str, *, editing: bool = False) -> type[InterviewForm]:
    """Build the interview form class for a questionnaire, in the auditor's language."""
    low, high = questionnaire.scale_min, questionnaire.scale_max
    choices = [SelectChoice(str(value)) for value in range(low, high + 1)]
    choices.append(SelectChoice(NOT_APPLICABLE, _l("Not applicable")))
    attributes: dict[str, Any] = {
        "item_codes": tuple(item.code for item in questionnaire.items),
        "dimension_items": tuple(
            (dimension, tuple(item.code for item in dimension.items)) for dimension in questionnaire.dimensions
        ),
        "editing": editing,
    }
    for item in questionnaire.items:
        attributes[FIELD_PREFIX + item.code] = RadioField(item.text(locale), name=item.code, choices=choices)
    return type("InterviewForm_" + questionnaire.code.replace("-", "_"), (InterviewForm,), attributes)


def initial_data(response: Response) -> dict[str, str]:
    """A stored interview as the edit form's initial data."""
    data = {
        FIELD_PREFIX + code: NOT_APPLICABLE if value is None else str(value)
        for code, value in response.answers.items()
    }
    data["customer_group"] = str(response.customer_group)
    return data


class UploadForm(FlaskForm):
    """A CSV file of paper interviews."""

    file = FileField(_l("CSV file"))
