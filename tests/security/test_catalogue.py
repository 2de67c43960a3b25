"""The messages of survey/web.py (error pages, expired forms, idle sign-out) are in Vietnamese, with diacritics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
from babel.messages.pofile import read_po

from .helpers import World, csrf_from

ROOT = Path(__file__).resolve().parents[2]


def translations() -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in sorted(ROOT.glob("translations/*/vi/LC_MESSAGES/messages.po")):
        with path.open("rb") as handle:
            for message in read_po(handle):
                if message.id and message.string:
                    merged.setdefault(str(message.id), str(message.string))
    return merged


def test_every_message_of_the_shared_pages_is_translated() -> None:
    catalogue = translations()
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    messages = [message for _line, message, _comments, _context
                in extract_from_file("python", ROOT / "survey/web.py", keywords=keywords)]
    assert len(messages) >= 12
    missing = [m for m in messages if m not in catalogue]
    assert missing == []
    ours = ROOT / "translations/security/vi/LC_MESSAGES/messages.po"
    with ours.open("rb") as handle:
        for message in read_po(handle):
            if message.id:
                # Vietnamese with its diacritics, and the placeholders kept.
                assert any(ord(ch) > 127 for ch in message.string), message.id
                assert message.string.count("%(") == str(message.id).count("%("), message.id


def test_an_expired_form_is_explained_in_vietnamese(world: World, browser: Any) -> None:
    client = browser()
    client.get("/login")
    response = client.post("/login", data={"email": world.hq.email, "password": "correct horse 42"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Trang này đã hết hiệu lực" in page and "tải lại trang" in page
    english = browser()
    english.get("/login?lang=en")
    response = english.post("/login", data={"email": world.hq.email, "password": "x" * 12,
                                            "csrf_token": "forged"})
    assert "This page has expired" in response.get_data(as_text=True)
    assert csrf_from(english.get("/login").get_data(as_text=True))
