"""The survey page form, built from a questionnaire dimension: one radio field per item."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice, StringField
from wtforms.validators import ValidationError

from ..questionnaire import DimensionSpec, QuestionnaireLayout

#: The value of the "Not applicable" radio; stored as null in the answers.
NOT_APPLICABLE = "na"
#: What the page's buttons do: go on (or submit on the last page), go back, or save and leave.
ACTIONS = ("next", "back", "save")
#: Item fields are form attributes ``item_<code>`` so an item code never shadows a form method;
#: their HTML name is the bare item code.
FIELD_PREFIX = "item_"


class ScaleField(RadioField):
    """One item: a whole number on the questionnaire's scale, or Not applicable."""

    def pre_validate(self, form: Any) -> None:
        if not self.raw_data:
            return  # whether a choice is required depends on the button pressed; the page form decides
        if len(self.raw_data) > 1:
            raise ValidationError(self.invalid_choice_message)
        super().pre_validate(form)


class DimensionPageForm(FlaskForm):
    """One survey page; make_page_form adds one ScaleField per item of the dimension."""

    item_codes: tuple[str, ...] = ()
    scale_min = 1
    scale_max = 10
    action = StringField(name="_action")

    def item_fields(self) -> list[ScaleField]:
        """The item fields in questionnaire order."""
        return [self[FIELD_PREFIX + code] for code in self.item_codes]

    @property
    def chosen_action(self) -> str:
        """The button pressed; Enter in the form means "next"."""
        return self.action.data or "next"

    def validate_page(self) -> bool:
        """Validate the posted page: known fields only, values on the scale, and a choice for every item on "next"."""
        valid = self.validate()
        allowed = {self.meta.csrf_field_name, self.action.name, *self.item_codes}
        if set(request.form.keys()) - allowed:
            self.form_errors.append(
                _("The form contained an answer that does not belong on this page. Reload the page and answer again.")
            )
            valid = False
        if self.chosen_action not in ACTIONS:
            self.form_errors.append(_("Unknown button. Reload the page and use the buttons at the bottom."))
            return False
        if self.chosen_action == "next":
            for field in self.item_fields():
                if not field.raw_data and not field.errors:
                    field.errors.append(self.required_message())
                    valid = False
        return valid

    def required_message(self) -> str:
        """What to do when an item has no answer."""
        return _(
            "Choose an answer: a number from %(low)d to %(high)d, or “Not applicable”.",
            low=self.scale_min,
            high=self.scale_max,
        )

    def answers(self) -> dict[str, int | None]:
        """The choices made on this page, as stored: a number, or None for Not applicable."""
        chosen: dict[str, int | None] = {}
        for code, field in zip(self.item_codes, self.item_fields(), strict=True):
            if field.raw_data:
                chosen[code] = None if field.data == NOT_APPLICABLE else int(field.data)
        return chosen


def make_page_form(
    questionnaire: QuestionnaireLayout, dimension: DimensionSpec, locale: str
) -> type[DimensionPageForm]:
    """Build the form class of one survey page from the dimension's items, in the customer's language."""
    low, high = questionnaire.scale_min, questionnaire.scale_max
    choices = [SelectChoice(str(value)) for value in range(low, high + 1)]
    choices.append(SelectChoice(NOT_APPLICABLE, _("Not applicable")))
    invalid = _(
        "This answer is not on the scale. Choose a number from %(low)d to %(high)d, or “Not applicable”.",
        low=low,
        high=high,
    )
    attributes: dict[str, Any] = {
        "item_codes": tuple(item.code for item in dimension.items),
        "scale_min": low,
        "scale_max": high,
    }
    for item in dimension.items:
        attributes[FIELD_PREFIX + item.code] = ScaleField(
            item.text(locale), name=item.code, choices=choices, invalid_choice_message=invalid
        )
    return type(f"PageForm_{dimension.code}", (DimensionPageForm,), attributes)


def initial_data(answers: dict[str, int | None]) -> dict[str, str]:
    """Saved answers as the form's initial data, so a page reopens with its choices filled in."""
    return {FIELD_PREFIX + code: NOT_APPLICABLE if value is None else str(value) for code, value in answers.items()}
