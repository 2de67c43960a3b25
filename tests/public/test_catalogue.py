"""Every text the survey shows has a Vietnamese translation, with the same placeholders."""

from __future__ import annotations

import re

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
from babel.messages.pofile import read_po

from .conftest import CATALOGUE, ROOT

SOURCES = [("python", path) for path in sorted((ROOT / "survey" / "public").glob("*.py"))] + [
    ("jinja2", path) for path in sorted((ROOT / "templates" / "public").glob("*.html"))
]
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}


def survey_strings() -> set[str]:
    found = set()
    for method, path in SOURCES:
        for _, message, _, _ in extract_from_file(method, str(path), keywords=KEYWORDS):
            found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.fixture(scope="module")
def catalogue():
    with (CATALOGUE / "messages.po").open("rb") as source:
        return read_po(source)


def test_every_survey_string_is_translated(catalogue):
    strings = survey_strings()
    assert len(strings) > 30  # the extraction really found the templates' strings
    untranslated = sorted(s for s in strings if s not in catalogue or not catalogue[s].string)
    assert untranslated == []
    fuzzy = sorted(m.id for m in catalogue if m.id and m.fuzzy)
    assert fuzzy == []


def test_translations_keep_the_placeholders(catalogue):
    for message in catalogue:
        if message.id:
            assert sorted(re.findall(r"%\(\w+\)\w", message.id)) == sorted(re.findall(r"%\(\w+\)\w", message.string))


@pytest.mark.parametrize(
    ("english", "vietnamese"),
    [
        ("Not applicable", "Không áp dụng"),
        ("Continue", "Tiếp tục"),
        ("Back", "Quay lại"),
        ("Save and continue later", "Lưu và tiếp tục sau"),
        ("Send my answers", "Gửi câu trả lời"),
        ("Thank you!", "Cảm ơn quý khách!"),
        ("Very dissatisfied", "Rất không hài lòng"),
        ("Very satisfied", "Rất hài lòng"),
    ],
)
def test_key_words_have_their_usual_vietnamese(catalogue, english, vietnamese):
    assert catalogue[english].string == vietnamese
