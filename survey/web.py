"""What every page shares: error pages, security headers, input hygiene and the home page."""

from __future__ import annotations

import urllib.parse

from flask import Flask, Response, abort, current_app, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.exceptions import HTTPException

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

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def wants_json() -> bool:
    """API clients get JSON errors; people get pages."""
    return request.path.startswith("/api/")


def render_error(error: HTTPException) -> tuple[Response | str, int]:
    """Render an HTTP error as a page (or JSON for the API), never a stack trace."""
    code = error.code or 500
    message = error.description if getattr(error, "show_description", True) else ""
    if wants_json():
        return {"error": str(ERROR_TITLES.get(code, error.name)), "detail": message}, code
    return render_template("error.html", code=code, title=ERROR_TITLES.get(code, error.name), message=message), code


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
    try:
        urllib.parse.parse_qsl(raw.decode("utf-8"), encoding="utf-8", errors="strict", max_num_fields=2000)
    except (UnicodeDecodeError, ValueError):
        abort(400, description=str(_l("The form data is not valid UTF-8 text. Please reload the page and try again.")))


def security_headers(response: Response) -> Response:
    """Add the headers every response carries."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    return response


def home() -> Response:
    """Send staff to their workspace and everyone else to the login page."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    targets = {"hq": "/hq/", "auditor": "/audit/", "manager": "/unit/"}
    return redirect(targets.get(str(current_user.role), url_for("auth.login")))


def init_app(app: Flask) -> None:
    """Register the shared handlers on the application."""
    app.register_error_handler(HTTPException, render_error)
    # First of all before-request hooks: CSRFProtect reads request.form, after which the raw body is gone.
    app.before_request_funcs.setdefault(None, []).insert(0, reject_invalid_utf8)
    app.after_request(security_headers)
    app.add_url_rule("/", "home", home)

    @app.context_processor
    def inject_locale() -> dict[str, object]:
        return {"current_locale": str(get_locale() or "vi")}

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response | str, int]:
        if isinstance(error, HTTPException):
            return render_error(error)
        app.logger.exception("Unhandled error on %s", request.path)
        if wants_json():
            return {"error": str(ERROR_TITLES[500])}, 500
        return render_template("error.html", code=500, title=ERROR_TITLES[500], message=""), 500
