"""The survey pages' CSRF token: a signed double-submit cookie, without the session.

A survey page's form carries ``HMAC(key, browser secret, link token)``; the browser secret is a
random value in a cookie of its own (``survey_browser``, path ``/s/``, HttpOnly, SameSite=Lax,
Secure where the session cookie is). A POST is accepted only when its form token matches the
cookie it arrives with and the link it is sent to. This is OWASP's "signed double-submit cookie":
another site can neither read the cookie nor compute the token, a token taken from one browser
fails in another (a different cookie), and one taken from one link fails on another.

Why not Flask-WTF's token, as the staff's forms use: it lives in the signed session cookie, and
reading that cookie and then the signed token cost a survey submission 5–10 % of its server
CPU (bench/RESULTS.md, 28 November 2026). Customers need nothing else from a session (a language
choice or a "saved" message still starts one), so their requests carry this small cookie instead.
Like the session's, tokens do not expire (WTF_CSRF_TIME_LIMIT is None: a customer may come back
to an open page hours later); changing SECRET_KEY invalidates them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from flask import Flask, Response, current_app, g, request
from flask_wtf.csrf import CSRFError

#: The cookie holding the browser's secret, and the form field holding the page's token.
COOKIE = "survey_browser"
FIELD = "csrf_token"
#: Where the cookie is sent: the survey's pages only (staff pages never see it).
COOKIE_PATH = "/s/"
#: A browser secret as issued (32 random bytes, URL-safe base64); anything else is no secret of ours.
_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{43}")
_KEY_CONTEXT = b"survey page token v1"


def derived_key(app: Flask, context: bytes) -> bytes:
    """An HMAC key for one use (``context``), derived from SECRET_KEY (computed once per application)."""
    keys = app.extensions.setdefault("survey_derived_keys", {})
    key = keys.get(context)
    if key is None:
        secret = app.secret_key
        secret = secret.encode() if isinstance(secret, str) else bytes(secret or b"")
        key = keys[context] = hmac.new(secret, context, hashlib.sha256).digest()
    return key


def _sign(browser: str, link_token: str) -> str:
    return hmac.digest(derived_key(current_app, _KEY_CONTEXT), f"{browser}\x00{link_token}".encode(), "sha256").hex()


def _browser_secret() -> str | None:
    value = request.cookies.get(COOKIE)
    return value if value is not None and _WELL_FORMED.fullmatch(value) else None


def page_token(link_token: str) -> str:
    """The token a page form of ``link_token`` carries for this browser (issuing its secret if it has none)."""
    browser = _browser_secret() or g.get("survey_new_browser")
    if browser is None:
        browser = g.survey_new_browser = secrets.token_urlsafe(32)
    return _sign(browser, link_token)


def check_page_token(link_token: str) -> None:
    """Raise CSRFError unless the POST's form token is this browser's token for ``link_token``."""
    sent = request.form.get(FIELD)
    if not sent:
        raise CSRFError("The CSRF token is missing.")
    browser = _browser_secret()
    if browser is None:
        raise CSRFError("The CSRF cookie is missing.")
    if not hmac.compare_digest(sent.encode(), _sign(browser, link_token).encode()):
        raise CSRFError("The CSRF token is invalid.")


def set_browser_cookie(response: Response) -> Response:
    """After a page that issued a browser secret: store it in the browser (after_request hook)."""
    browser = g.get("survey_new_browser")
    if browser is not None:
        app = current_app
        response.set_cookie(
            COOKIE,
            browser,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Lax",
            secure=bool(app.config.get("SESSION_COOKIE_SECURE")),
        )
    return response
