"""Every text of the auditor workspace has a Vietnamese translation in translations/audit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir, extract_from_file
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "translations" / "audit" / "vi" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None}
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")
#: Letters only Vietnamese uses: a translation without any is probably not Vietnamese.
VIETNAMESE = re.compile(r"[ăâđêôơưáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ]", re.I)


def extracted() -> set[str]:
    """The msgids in the area's code and templates, extracted as pybabel does."""
    found: list[tuple] = []
    method_map = [("**.py", "python"), ("**.html", "jinja2")]
    for folder in ("survey/audit", "templates/audit"):
        found += list(extract_from_dir(str(ROOT / folder), method_map=method_map, keywords=KEYWORDS))
    found += [(None, *message) for message in
              extract_from_file("python", str(ROOT / "survey/services/interviews.py"), keywords=KEYWORDS)]
    return {entry[2] if isinstance(entry[2], str) else entry[2][0] for entry in found}


@pytest.fixture(scope="module")
def catalogue():
    with CATALOGUE.open("rb") as handle:
        return {message.id: message for message in read_po(handle) if message.id}


def test_every_string_has_a_vietnamese_translation(catalogue):
    strings = extracted()
    assert len(strings) > 100
    missing = sorted(s for s in strings if s not in catalogue or not catalogue[s].string)
    assert missing == []


def test_translations_are_complete_and_keep_their_placeholders(catalogue):
    for msgid, message in catalogue.items():
        assert not message.fuzzy, msgid
        assert sorted(PLACEHOLDER.findall(message.string)) == sorted(PLACEHOLDER.findall(msgid)), msgid
        assert VIETNAMESE.search(message.string), f"not Vietnamese? {msgid!r} → {message.string!r}"
