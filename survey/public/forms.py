"""The survey page form, built from a questionnaire dimension: one radio field per item."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import request
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice, StringField
from wtforms.validators import ValidationError

from ..questionnaire import DimensionSpec, QuestionnaireLayout
from .link_state import FIELD as STATE_FIELD
from .tokens import FIELD as TOKEN_FIELD

#: The value of the "Not applicable" radio; stored as null in the answers.
NOT_APPLICABLE = "na"
#: What the page's buttons do: go on (or submit on the last page), go back, or save and leave.
ACTIONS = ("next", "back", "save")
#: Item fields are form attributes ``item_<code>`` so an item code never shadows a form method;
#: their HTML name is the bare item code.
FIELD_PREFIX = "item_"
#: The HTML name of the page's buttons.
ACTION_FIELD = "_action"


class ScaleField(RadioField):
    """One item: a whole number on the questionnaire's scale, or Not applicable."""

    def pre_validate(self, form: Any) -> None:
        if not self.raw_data:
            return  # whether a choice is required depends on the button pressed; the page form decides
        if len(self.raw_data) > 1:
            raise ValidationError(self.invalid_choice_message)
        super().pre_validate(form)


class DimensionPageForm(FlaskForm):
    """One survey page; make_page_form adds one ScaleField per item of the dimension.

    The page's CSRF token is not the form's: tokens.py issues it and checks it before the view.
    """

    class Meta:
        csrf = False

    item_codes: tuple[str, ...] = ()
    scale_min = 1
    scale_max = 10
    action = StringField(name=ACTION_FIELD)

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
        allowed = {TOKEN_FIELD, STATE_FIELD, self.action.name, *self.item_codes}
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


#: Page form classes by questionnaire version, page and language: built once per process, like any form class.
FORM_CACHE_SIZE = 256
_forms: OrderedDict[tuple[Any, ...], type[DimensionPageForm]] = OrderedDict()
_forms_lock = threading.Lock()


def page_form(questionnaire: QuestionnaireLayout, dimension: DimensionSpec, locale: str) -> type[DimensionPageForm]:
    """The form class of one survey page, built on first use (a stored questionnaire never changes)."""
    if questionnaire.id is None:
        return make_page_form(questionnaire, dimension, locale)
    key = (questionnaire.id, questionnaire.checksum, dimension.code, locale)
    with _forms_lock:
        form_class = _forms.get(key)
        if form_class is not None:
            _forms.move_to_end(key)
            return form_class
    form_class = make_page_form(questionnaire, dimension, locale)
    with _forms_lock:
        _forms[key] = form_class
        while len(_forms) > FORM_CACHE_SIZE:
            _forms.popitem(last=False)
    return form_class


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


@dataclass(frozen=True, slots=True)
class PostedPage:
    """A posted page that the page form accepts: its answers (as `DimensionPageForm.answers`) and button."""

    answers: dict[str, int | None]
    action: str


def read_posted_page(
    questionnaire: QuestionnaireLayout, dimension: DimensionSpec, formdata: Mapping[str, Any]
) -> PostedPage | None:
    """The answers and button of a posted page if `DimensionPageForm.validate_page` accepts it; else None.

    The customer's common case without building a form: the same rules (known fields only, one
    value per item, on the scale or "na", a choice for every item on "next"). When it says None
    the page form validates the post again and explains what is wrong. ``formdata`` is the
    request's MultiDict; the page's token was checked before the view ran.
    """
    codes = [item.code for item in dimension.items]
    allowed = {TOKEN_FIELD, STATE_FIELD, ACTION_FIELD, *codes}
    if any(key not in allowed for key in formdata.keys()):
        return None
    action = formdata.get(ACTION_FIELD) or "next"
    if action not in ACTIONS:
        return None
    choices = _choices(questionnaire.scale_min, questionnaire.scale_max)
    answers: dict[str, int | None] = {}
    for code in codes:
        values = formdata.getlist(code)
        if not values:
            if action == "next":
                return None
            continue
        if len(values) > 1 or values[0] not in choices:
            return None
        answers[code] = None if values[0] == NOT_APPLICABLE else int(values[0])
    return PostedPage(answers, action)


_scale_choices: dict[tuple[int, int], frozenset[str]] = {}


def _choices(low: int, high: int) -> frozenset[str]:
    """The values a page's radios can send: the scale's numbers as text, and "na"."""
    choices = _scale_choices.get((low, high))
    if choices is None:
        choices = _scale_choices[(low, high)] = frozenset([*(str(v) for v in range(low, high + 1)), NOT_APPLICABLE])
    return choices
