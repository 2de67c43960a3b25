"""The customer survey at /s/<token>."""

from __future__ import annotations

from flask import Blueprint, request

from ..extensions import csrf, db, limiter
from .tokens import set_browser_cookie

bp = Blueprint("public", __name__)
# The survey's forms carry a token of their own (tokens.py, a signed double-submit cookie) rather
# than Flask-WTF's session token: the page view, the blueprint's only POST, checks it once the link
# is known (an unknown link is a 404, not an expired page). A POST route added here must check it
# too: tests/security/test_csrf.py fails for a POST route it has no case for.
csrf.exempt(bp)


@limiter.request_filter
def _survey_request() -> bool:
    """The survey has no rate limits (many customers share one address behind a carrier's NAT, and a
    link is single-use): spare its requests the limiter's per-request look-ups."""
    return request.blueprint == bp.name


@bp.before_request
def _read_without_transaction() -> None:
    """PostgreSQL: a survey page's GET reads in autocommit, as its POST writes (views._answer).

    A GET only reads (the link with its campaign, questionnaire and unit, in one statement), and a
    statement in autocommit sees what a READ COMMITTED transaction's statement would. No BEGIN and
    no ROLLBACK go to the server. The ROLLBACK mattered most: psycopg forgets every statement
    it has prepared on the connection at a ROLLBACK, so a worker serving customers' GETs and POSTs
    in turn parsed and planned the submission's statement again for every submission (bench/RESULTS.md,
    28 November 2026, fourth session).
    """
    if request.method not in ("GET", "HEAD") or db.engine.dialect.name != "postgresql":
        return  # a POST uses a connection of its own (views._answer): no Session is made for it here
    session = db.session()  # this request's Session (the scoped proxy has no in_transaction)
    # Only before the request's first statement: a transaction already begun (by an earlier hook) goes on.
    if not session.in_transaction():
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


bp.after_request(set_browser_cookie)

from . import views  # noqa: E402,F401  (registers the routes on bp)
