"""Messages of the services: in the reader's language on a web page, in English on the command line."""

from __future__ import annotations

from typing import Any

from flask import has_request_context
from flask_babel import gettext


def translate(message: str, **values: Any) -> str:
    """Translate for the person on the web page; outside a request (CLI, tests) the text stays English.

    Services import it as ``_`` so that Babel's extraction finds their messages.
    """
    if has_request_context():
        return gettext(message, **values)
    return message % values if values else message


def N_(message: str) -> str:  # noqa: N802 (the usual name of gettext's no-op marker)
    """Mark a message for translation where it is stored, not shown (translated later, where it is shown)."""
    return message
