"""Views of the customer survey: introduction, one page per dimension, thanks."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy import Connection

from ..extensions import db
from ..models import Invitation
from ..services.invitations import (
    InvitationUnavailable,
    LinkChanged,
    OpenLink,
    find_invitation,
    find_open_link,
    lock_open_link,
    read_open_link,
)
from . import bp, link_state, service
from .forms import DimensionPageForm, PostedPage, initial_data, page_form, read_posted_page
from .tokens import check_page_token, page_token


def _locale() -> str:
    return str(get_locale() or "vi")


def _page_url(token: str, number: int, total: int) -> str:
    if number <= 0:
        return url_for("public.intro", token=token)
    if number > total:
        return url_for("public.thanks", token=token)
    return url_for("public.page", token=token, number=number)


@bp.get("/s/<token>")
def intro(token: str) -> ResponseReturnValue:
    """Introduce the survey, or reopen it where the customer left off."""
    invitation = find_invitation(token)
    progress = service.progress_of(invitation)
    if progress.resume_page > 0:
        return redirect(_page_url(token, progress.resume_page, progress.total))
    return render_template("public/intro.html", invitation=invitation, progress=progress, token=token)


@bp.route("/s/<token>/<int:number>", methods=["GET", "POST"])
def page(token: str, number: int) -> ResponseReturnValue:
    """Show one dimension's items, with the answers saved so far; on POST save them (see `_answer`)."""
    if request.method == "POST":
        return _answer(token, number)
    invitation, link = find_open_link(token)
    progress = service.progress_of(invitation)
    if not 1 <= number <= progress.total:
        abort(404)
    if number > progress.first_incomplete:
        # Pages are answered in order; a link to a later page leads to the first unanswered one.
        return redirect(_page_url(token, progress.first_incomplete, progress.total))
    form_class = page_form(progress.layout, progress.dimension(number), _locale())
    form = form_class(data=initial_data(progress.answers_on(number)))
    return _render_page(invitation, link, progress, number, form, token)


#: Reads of the link a page POST makes on PostgreSQL when another request changes it in between.
ATTEMPTS = 3


def _answer(token: str, number: int) -> ResponseReturnValue:
    """Save the page's answers and go on, go back, or submit (on the last page).

    Core statements on a connection of their own: the ORM session is not needed here. Two tabs or
    a double click must not interleave. On SQLite the invitation is read and locked in one
    statement and kept locked until the answers are saved (closing the connection rolls back
    whatever was not committed). On PostgreSQL the connection is in autocommit: the link comes from
    the page's form (`link_state`, one statement in all) or is read without a lock, with its row
    version, and the one statement that saves the draft or stores the response does so only if the
    row is unchanged and its campaign still open; if another request changed either meanwhile,
    nothing was written and the POST starts over from a new read (no BEGIN or COMMIT, no lock held
    while the answers are checked).
    """
    with db.engine.connect() as connection:
        if connection.dialect.name != "postgresql":
            return _answer_on(connection, lock_open_link(connection, token), token, number)
        connection.execution_options(isolation_level="AUTOCOMMIT")
        carried = carried_link(token)
        if carried is not None:
            try:
                return _answer_on(connection, carried, token, number)
            except LinkChanged:
                pass  # the form is stale: read the link
        for _ in range(ATTEMPTS):
            try:
                return _answer_on(connection, read_open_link(connection, token), token, number)
            except LinkChanged:
                continue
    # Changed again at every attempt (a script, not a person): nothing was saved.
    return render_template("public/expired.html", reload_url=request.path), 409


def carried_link(token: str) -> OpenLink | None:
    """The link as the page showed it, from the POST's form (None when there is none to trust)."""
    return link_state.unseal(token, request.form.get(link_state.FIELD))


def _answer_on(connection: Connection, link: OpenLink, token: str, number: int) -> ResponseReturnValue:
    try:
        check_page_token(token)
    except CSRFError:
        connection.rollback()
        raise
    progress = service.progress_of_link(link)
    if not 1 <= number <= progress.total:
        connection.rollback()
        abort(404)
    if number > progress.first_incomplete:
        connection.rollback()
        return redirect(_page_url(token, progress.first_incomplete, progress.total))
    dimension = progress.dimension(number)
    posted = read_posted_page(progress.layout, dimension, request.form)
    if posted is None:
        # Something to explain: the page form validates the post and says what is wrong.
        form = page_form(progress.layout, dimension, _locale())()
        if not form.validate_page():
            connection.rollback()
            return _render_page(find_invitation(token), link, progress, number, form, token), 422
        posted = PostedPage(form.answers(), form.chosen_action)
    destination = service.record_page(connection, link, progress.layout, number, posted.answers, posted.action)
    if posted.action == "save":
        flash(_("Your answers are saved. You can close this page and open the same link later to continue."),
              "success")
    return redirect(_page_url(token, destination, progress.total), code=303)


def _render_page(
    invitation: Invitation,
    link: OpenLink | None,
    progress: service.SurveyProgress,
    number: int,
    form: DimensionPageForm,
    token: str,
) -> str:
    return render_template(
        "public/page.html",
        invitation=invitation,
        progress=progress,
        number=number,
        dimension=progress.dimension(number),
        form=form,
        token=token,
        page_token=page_token(token),
        link_state=link_state.seal(token, link),
    )


@bp.get("/s/<token>/thanks")
def thanks(token: str) -> ResponseReturnValue:
    """Thank the customer; still works on reload, because the link is now used."""
    invitation = service.answered_invitation(token)
    if invitation is None:
        return redirect(url_for("public.intro", token=token))
    return render_template("public/thanks.html", invitation=invitation)


@bp.errorhandler(InvitationUnavailable)
def unavailable(error: InvitationUnavailable) -> tuple[str, int]:
    """Say why a link cannot be used, and what to do."""
    return render_template("public/unavailable.html", reason=error.reason, code=error.status), error.status


@bp.errorhandler(CSRFError)
def page_expired(error: CSRFError) -> tuple[str, int]:
    """A form without a valid security token: ask the customer to reload rather than show a bare 400."""
    return render_template("public/expired.html", reload_url=request.path), 400


@bp.after_request
def no_store(response: Response) -> Response:
    """Survey pages carry a customer's answers and a form token: keep them out of caches."""
    response.headers["Cache-Control"] = "no-store"
    return response
