"""What every page shares: error pages, security headers, input hygiene and the home page."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

from flask import Flask, Response, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user, logout_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from .policy import Action, can

#: Friendly titles for the error pages, by status code.
ERROR_TITLES = {
    400: _l("The request could not be understood"),
    403: _l("You do not have access to this page"),
    404: _l("Page not found"),
    405: _l("This action is not allowed here"),
    410: _l("This link can no longer be used"),
    413: _l("The data sent is too large"),
    422: _l("The data sent is not valid"),
    429: _l("Too many attempts"),
    500: _l("Something went wrong on our side"),
}

#: The title and message of a refused form (missing or stale CSRF token), in words a person understands.
CSRF_TITLE = _l("This page has expired")
CSRF_MESSAGE = _l("For your security nothing was saved: the page was open too long or was sent from elsewhere. "
                  "Reload the page and try again.")

#: Session key holding when a signed-in staff member last made a request (seconds since the epoch).
LAST_SEEN = "_last_seen"

#: The largest id a URL may carry: PostgreSQL's INTEGER; a longer number is simply not found.
MAX_URL_INTEGER = 2**31 - 1

#: More fields than this in a URL-encoded form is refused (400).
MAX_FORM_FIELDS = 2000

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def wants_json() -> bool:
    """API clients get JSON errors; people get pages."""
    return request.path.startswith("/api/")


class DatabaseInteger(IntegerConverter):
    """``<int:…>`` in URLs, bounded to what the database can hold, so a huge number is a 404, not a crash."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_URL_INTEGER)
        super().__init__(map, *args, **kwargs)


def render_error(error: HTTPException) -> tuple[Response | str, int]:
    """Render an HTTP error as a page (or JSON for the API), never a stack trace."""
    code = error.code or 500
    message = error.description if getattr(error, "show_description", True) else ""
    title = ERROR_TITLES.get(code, error.name)
    if isinstance(error, CSRFError):
        title, message = CSRF_TITLE, str(CSRF_MESSAGE)
    if wants_json():
        return {"error": str(title), "detail": message}, code
    return render_template("error.html", code=code, title=title, message=message), code


def reject_invalid_utf8() -> None:
    """Refuse form bodies that are not valid UTF-8 instead of storing replacement characters."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    if request.mimetype != "application/x-www-form-urlencoded":
        return
    # Werkzeug >= 3.1.9 no longer applies MAX_FORM_MEMORY_SIZE to url-encoded bodies, so apply it here.
    limit = current_app.config.get("MAX_FORM_MEMORY_SIZE")
    if limit is not None and (request.content_length or 0) > limit:
        abort(413)
    raw = request.get_data(cache=True)
    if limit is not None and len(raw) > limit:  # a chunked body has no Content-Length
        abort(413)
    if raw.isascii() and b"%" not in raw and raw.count(b"&") < MAX_FORM_FIELDS:
        return  # plain ASCII without escapes decodes to itself: nothing to check (most forms)
    try:
        urllib.parse.parse_qsl(raw.decode("utf-8"), encoding="utf-8", errors="strict",
                               max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        abort(400, description=str(_l("The form data is not valid UTF-8 text. Please reload the page and try again.")))


def reject_nul_characters() -> None:
    """Refuse a NUL character in the address, the query or a form field: no text we keep contains one.

    PostgreSQL cannot store or even compare text with NUL, so letting one through turns a typo
    or a probe into a server error.
    """
    fields: list[str] = [request.path]
    if _may_hold_nul(request.query_string):
        for key, value in request.args.items(multi=True):
            fields += (key, value)
    if request.method in ("POST", "PUT", "PATCH") and (
        request.mimetype == "multipart/form-data"
        or request.mimetype == "application/x-www-form-urlencoded" and _may_hold_nul(request.get_data(cache=True))
    ):
        for key, value in request.form.items(multi=True):
            fields += (key, value)
        fields += [name for name in request.files] + [f.filename or "" for f in request.files.values()]
    if any("\x00" in field for field in fields):
        abort(400, description=str(_l("The address or the form contains a NUL character. Remove it and try again.")))


def _may_hold_nul(encoded: bytes) -> bool:
    """Whether URL-encoded text can decode to a NUL: only a NUL byte or ``%00`` does (most requests: no)."""
    return b"\x00" in encoded or b"%00" in encoded


def expire_idle_staff() -> Response | None:
    """Sign staff out after STAFF_IDLE_MINUTES without a request: a forgotten office computer stays safe.

    Kept apart from PERMANENT_SESSION_LIFETIME on purpose: customers' sessions hold only the
    survey form's token and may sit open for hours, and Flask enforces that lifetime on every
    session cookie.
    """
    if "_user_id" not in session or request.endpoint == "static":
        return None
    now = time.time()
    limit = current_app.config["STAFF_IDLE_MINUTES"] * 60
    last_seen = session.get(LAST_SEEN)
    if isinstance(last_seen, int | float) and now - last_seen > limit:
        logout_user()
        session.pop(LAST_SEEN, None)
        if wants_json() or request.path.endswith(".json"):
            return None  # the JSON callers answer 401 to an anonymous request themselves
        flash(gettext("You were signed out after %(minutes)d minutes without activity. Please log in again.",
                      minutes=current_app.config["STAFF_IDLE_MINUTES"]), "error")
        if request.method == "GET":
            return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))
        return redirect(url_for("auth.login"))
    session[LAST_SEEN] = int(now)
    return None


#: The headers every response carries (unless the view set its own value).
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000")


def security_headers(response: Response) -> Response:
    """Add the headers every response carries."""
    headers = response.headers
    present = {name.lower() for name in headers.keys()}  # one pass, rather than one search per header
    wanted = SECURITY_HEADERS
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        # Served over HTTPS only (production): browsers must never fall back to plain HTTP.
        wanted = (*wanted, HSTS)
    for name, value in wanted:
        if name.lower() not in present:
            headers.add(name, value)
    return response


def home() -> Response:
    """Send staff to their workspace and everyone else to the login page."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    # The policy decides which workspace a person may use; this only follows its answer.
    if can(current_user, Action.HQ_PAGES):
        return redirect(url_for("hq.index"))
    if can(current_user, Action.AUDIT_WORKSPACE):
        return redirect(url_for("audit.workspace"))
    if can(current_user, Action.VIEW_UNIT_RESULTS, current_user.unit):
        return redirect(url_for("unit.index"))
    return redirect(url_for("auth.login"))


def problem_text(problem: Any) -> str:
    """A refused file's problem in the reader's language (services say it in English, with a message to translate)."""
    if not problem.message:
        return str(problem.reason)
    return gettext(problem.message, **problem.params)


def init_app(app: Flask) -> None:
    """Register the shared handlers on the application."""
    app.register_error_handler(HTTPException, render_error)
    # Before any blueprint adds a rule: every <int:…> in a URL is bounded to what the database holds.
    app.url_map.converters["int"] = DatabaseInteger
    # First of all before-request hooks: CSRFProtect reads request.form, after which the raw body is gone.
    hooks = app.before_request_funcs.setdefault(None, [])
    hooks[0:0] = [reject_invalid_utf8, reject_nul_characters, expire_idle_staff]
    app.after_request(security_headers)
    app.add_url_rule("/", "home", home)

    @app.context_processor
    def inject_locale() -> dict[str, object]:
        return {"current_locale": str(get_locale() or "vi")}

    app.add_template_filter(problem_text)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response | str, int]:
        if isinstance(error, HTTPException):
            return render_error(error)
        app.logger.exception("Unhandled error on %s", request.path)
        if wants_json():
            return {"error": str(ERROR_TITLES[500])}, 500
        return render_template("error.html", code=500, title=ERROR_TITLES[500], message=""), 500
