"""The reports area's Vietnamese catalogue: every string translated, placeholders kept, diacritics present."""

from __future__ import annotations

import re

from babel.messages.pofile import read_po

from .conftest import CATALOGUE

PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|%%")
VIETNAMESE_LETTERS = re.compile(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", re.IGNORECASE)


def catalogue():
    with (CATALOGUE / "messages.po").open("rb") as po:
        return read_po(po)


def test_every_message_is_translated_with_the_same_placeholders():
    messages = [m for m in catalogue() if m.id]
    assert len(messages) > 100
    for message in messages:
        assert message.string, f"untranslated: {message.id!r}"
        assert not message.fuzzy, f"fuzzy: {message.id!r}"
        assert sorted(PLACEHOLDER.findall(message.id)) == sorted(PLACEHOLDER.findall(message.string)), message.id


def test_translations_are_vietnamese_with_diacritics():
    messages = [m for m in catalogue() if m.id and len(m.id) > 12]
    without = [m.id for m in messages if not VIETNAMESE_LETTERS.search(m.string)]
    assert not without, without
