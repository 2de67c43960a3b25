"""Helpers for the customer survey tests: an open survey link, answering pages like a browser, snapshots."""

from __future__ import annotations

import contextvars
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from survey.extensions import db
from survey.models import Invitation, Response
from tests.helpers import csrf_from  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "translations" / "survey" / "vi" / "LC_MESSAGES"


def read_questionnaire() -> list[tuple[str, list[str]]]:
    """The default questionnaire's dimensions and item codes, read from the TOML file itself."""
    data = tomllib.loads((ROOT / "survey" / "questionnaires" / "evn-csi-2017.toml").read_text("utf-8"))
    return [(d["code"], [i["code"] for i in d["items"]]) for d in data["dimensions"]]


#: [(dimension code, [item codes])] in page order.
PAGES = read_questionnaire()


def expected_index(answers: Mapping[str, int | None]) -> float | None:
    """Respondent index by DESIGN.md, computed here independently: mean of item means per dimension."""
    means = []
    for _, items in PAGES:
        values = [answers[code] for code in items if answers.get(code) is not None]
        if values:
            means.append(sum(values) / len(values))
    if 2 * len(means) < len(PAGES):
        return None
    return sum(means) / len(means)


def form_values(answers: Mapping[str, int | None | str]) -> dict[str, str]:
    """Answers as a browser posts them: the number, or "na" for Not applicable."""
    return {code: "na" if value is None else str(value) for code, value in answers.items()}


class IsolatedClient(FlaskClient):
    """A test client whose every request gets its own application context, as in a real server.

    The `app` fixture keeps an application context pushed for the whole test, and Flask reuses it
    for test-client requests, so `g` would carry Flask-WTF's CSRF token and Flask-Babel's locale
    from one request (and one client) to the next. Running each request in an empty context
    makes sessions, CSRF tokens and language choice behave as they do for customers.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def new_client(app: Any) -> Callable[[], IsolatedClient]:
    """Factory: another browser (its own cookies and session)."""
    return lambda: IsolatedClient(app, app.response_class, use_cookies=True)


@pytest.fixture
def client(new_client: Callable[[], IsolatedClient]) -> IsolatedClient:
    """The customer's browser."""
    return new_client()


@dataclass
class Link:
    """An open survey link of a test campaign."""

    token: str
    invitation_id: int
    campaign_id: int

    @property
    def url(self) -> str:
        return f"/s/{self.token}"

    def page_url(self, number: int) -> str:
        return f"/s/{self.token}/{number}"


@pytest.fixture
def link(make_campaign: Callable[..., Any], make_invitation: Callable[..., Any]) -> Link:
    """A fresh, unanswered invitation of an open campaign."""
    campaign = make_campaign()
    invitation, token = make_invitation(campaign)
    return Link(token, invitation.id, campaign.id)


_LINK_STATE = re.compile(r'name="link_state" value="([^"]+)"')


def page_fields(html: str) -> dict[str, str]:
    """The hidden fields a browser posts back with a survey page: the CSRF token and, on PostgreSQL,
    the link's state (`survey.public.link_state`)."""
    fields = {"csrf_token": csrf_from(html)}
    state = _LINK_STATE.search(html)
    if state is not None:
        fields["link_state"] = state.group(1)
    return fields


def answer_page(client: Any, link: Link, number: int, answers: Mapping[str, Any], action: str | None = "next",
                extra: Mapping[str, str] | None = None, *, carry_state: bool = True) -> Any:
    """Open a page like a browser (for its hidden fields) and post the answers; return the POST response.

    ``carry_state=False`` leaves the link's state out, as a form of an older release would: the POST reads the link.
    """
    page = client.get(link.page_url(number))
    assert page.status_code == 200, page.status_code
    data = {**page_fields(page.get_data(as_text=True)), **form_values(answers)}
    if not carry_state:
        data.pop("link_state", None)
    if action is not None:
        data["_action"] = action
    data.update(extra or {})
    return client.post(link.page_url(number), data=data)


def watch_links(monkeypatch: Any, change: Callable[[Any, int], None] | None = None,
                times: int | None = 1) -> list[str]:
    """Record how each page POST comes to know its link: "carried" (a trusted `link_state`) or "read".

    With ``change``, each time a POST knows the link, another request's write follows
    (``change(connection, invitation_id)``, committed on a connection of its own), ``times`` times
    (None: always), before the POST's own write.
    """
    from survey.public import views

    known: list[str] = []

    def watched(how: str, get: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            link = get(*args)
            if link is not None:
                known.append(how)
                if change is not None and (times is None or len(known) <= times):
                    with db.engine.begin() as other:
                        change(other, link.id)
            return link
        return wrapper

    monkeypatch.setattr(views, "carried_link", watched("carried", views.carried_link))
    monkeypatch.setattr(views, "read_open_link", watched("read", views.read_open_link))
    return known


def full_answers(seed: int = 0) -> dict[str, int | None]:
    """A varied, complete set of answers, with some Not applicable."""
    answers: dict[str, int | None] = {}
    for p, (_, items) in enumerate(PAGES):
        for i, code in enumerate(items):
            answers[code] = (p * 3 + i * 5 + seed) % 10 + 1
    answers[PAGES[0][1][1]] = None
    return answers


def page_answers(answers: Mapping[str, int | None], number: int) -> dict[str, int | None]:
    """The part of ``answers`` that belongs on page ``number``."""
    return {code: answers[code] for code in PAGES[number - 1][1] if code in answers}


@dataclass(frozen=True)
class Snapshot:
    """What a request may change: stored responses and the invitation's draft."""

    responses: int
    draft_answers: Any
    draft_page: int
    draft_saved_at: Any
    used_at: Any


def snapshot(link: Link) -> Snapshot:
    """Read the state straight from the database (not from the session's cached objects)."""
    db.session.expire_all()
    responses = db.session.scalar(sa.select(sa.func.count()).select_from(Response))
    row = db.session.execute(
        sa.select(Invitation.draft_answers, Invitation.draft_page, Invitation.draft_saved_at, Invitation.used_at)
        .where(Invitation.id == link.invitation_id)
    ).one()
    db.session.commit()
    return Snapshot(responses, row.draft_answers, row.draft_page, row.draft_saved_at, row.used_at)


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogue() -> None:
    """Compile the survey's Vietnamese catalogue when `make` has not done it yet (the tests read Vietnamese)."""
    po, mo = CATALOGUE / "messages.po", CATALOGUE / "messages.mo"
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        return
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as source:
        catalogue = read_po(source)
    with mo.open("wb") as target:
        write_mo(target, catalogue)
