"""The HQ catalogue: every string of the HQ workspace and cross-scoring services has a Vietnamese translation."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
VIETNAMESE_LETTERS = re.compile(r"[ăâđêôơưáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ]", re.I)


def catalogue():
    with (ROOT / "translations/hq/vi/LC_MESSAGES/messages.po").open("rb") as file:
        return read_po(file)


def test_every_string_in_the_sources_is_in_the_catalogue():
    with (ROOT / "translations/hq/babel.cfg").open() as file:
        method_map, options_map = parse_mapping_cfg(file)
    keywords = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "N_": None}
    # The mapping's patterns are relative to the repository root; hidden folders (.venv) are skipped.
    found = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords
        )
    }
    known = {message.id for message in catalogue() if message.id}
    assert found, "nothing extracted: check translations/hq/babel.cfg"
    assert not sorted(found - known), "run the extraction and translate the new strings"


def test_every_message_is_translated_with_the_same_placeholders():
    for message in catalogue():
        if not message.id:
            continue
        assert message.string, f"untranslated: {message.id}"
        assert not message.fuzzy, f"fuzzy: {message.id}"
        assert set(PLACEHOLDER.findall(message.id)) == set(PLACEHOLDER.findall(message.string)), message.id


def test_translations_are_vietnamese_with_diacritics():
    texts = [m.string for m in catalogue() if m.id and len(m.id.split()) >= 3]
    without = [t for t in texts if not VIETNAMESE_LETTERS.search(t)]
    assert not without, without
