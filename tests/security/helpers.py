"""The world the security tests attack: every kind of object and role, and the app's routes with real arguments.

Built through the application's own services, so the stored rows (pseudonyms, hashes, audit
events) are what production stores.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask
from werkzeug.routing import Rule

from survey import charts
from survey.extensions import db
from survey.models import (
    Assignment,
    AssignmentStatus,
    Campaign,
    Channel,
    CustomerGroup,
    Response,
    ReviewState,
    Role,
    Source,
    Unit,
    User,
)
from survey.services.assignments import create_assignments, reopen_assignment, submit_assignment
from survey.services.interviews import record_interview
from survey.services.invitations import issue_invitations
from survey.services.responses import submit_response
from survey.services.review import review_response
from survey.services.users import create_api_key, create_user
from tests.helpers import PASSWORD, csrf_from, login  # noqa: F401

#: Free text only HQ and the auditors concerned may read; a unit manager must never see it.
SECRET_COMMENT = "Ghi chú nội bộ REVIEW-7f3a"
SECRET_REOPEN = "Lý do mở lại REOPEN-9c1d"
#: Raw customer identifiers typed by people; only their keyed hashes may be stored.
RAW_INTERVIEW_ID = "PA01HH0099001"
RAW_CONSULTANT_ID = "KH-TUVAN-000123"

#: Strings an attacker puts in URL parameters and query strings.
ATTACKS = (
    "' OR 1=1 --",
    "1; DROP TABLE response; --",
    '" OR ""="',
    "../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2f",
    "....//....//etc/passwd",
    "a\x00b",
    "\x00",
    "<script>alert(1)</script>",
    "${7*7}{{7*7}}",
    "\u202egnp.exe",
    "9" * 40,
    "-1",
    "x" * 3000,
)

#: The strongest few, for tables that multiply them by every query parameter of every route.
QUERY_ATTACKS = ("' OR 1=1 --", "../../etc/passwd", "%2e%2e%2f", "a\x00b", "<script>alert(1)</script>", "9" * 40,
                 "\u202egnp.exe", "x" * 3000)

#: Cases tried per property or table, printed at the end of the run (tests/security/conftest.py).
FIGURES: Counter[str] = Counter()


@dataclass
class World:
    """A campaign with four units and every kind of object a route can name."""

    campaign: Campaign
    units: list[Unit]
    #: Auditor A's open assignment (unit A scores another), with one interview reviewed "has issues".
    open_assignment: Assignment
    #: Unit B's: submitted, then reopened by HQ with a reason.
    reopened_assignment: Assignment
    #: Unit C's: submitted (locked).
    submitted_assignment: Assignment
    cross_response: Response
    consultant_response: Response
    token: str
    used_token: str
    hq: User
    auditor: User
    auditor_b: User
    manager: User
    api_key: str

    @property
    def item_codes(self) -> list[str]:
        return [item.code for item in self.campaign.questionnaire.items]


def interview_payload(item_codes: list[str], respondent: str = RAW_INTERVIEW_ID, value: int = 7) -> dict[str, Any]:
    """A complete interview as the auditor's device sends it."""
    return {
        "interview_id": str(uuid.uuid4()),
        "customer_group": "household",
        "respondent_id": respondent,
        "answers": {code: value for code in item_codes},
    }


def build_world(make_campaign: Any, make_invitation: Any) -> World:
    """Make the campaign, accounts, assignments, responses, links and API key the tests use."""
    campaign = make_campaign(code="sec-2017", units=4)
    units = list(db.session.scalars(sa.select(Unit).order_by(Unit.code)))
    a, b, c, _d = units
    codes = [item.code for item in campaign.questionnaire.items]
    hq = staff_account("hq@evnnpc.vn", Role.HQ, None)
    auditor = staff_account("auditor.a@evnnpc.vn", Role.AUDITOR, a)
    auditor_b = staff_account("auditor.b@evnnpc.vn", Role.AUDITOR, b)
    manager = staff_account("manager.b@evnnpc.vn", Role.MANAGER, b)
    # Through the service, so every assignment has its audit event and `flask audit verify` holds.
    by_rater = {x.rater_unit_id: x for x in create_assignments(campaign, 1, 5, seed=7, actor="cli")}
    open_assignment, reopened, submitted = by_rater[a.id], by_rater[b.id], by_rater[c.id]

    consultant = None
    for unit in units:
        for number in range(3):
            response = submit_response(
                campaign=campaign, unit=unit, source=Source.CONSULTANT, channel=Channel.IMPORT,
                customer_group=CustomerGroup.HOUSEHOLD if number else CustomerGroup.BUSINESS,
                respondent_id=f"{RAW_CONSULTANT_ID}-{unit.code}-{number}",
                answers={code: 5 + (number + len(unit.code)) % 5 for code in codes}, actor="cli",
            )
            consultant = consultant or response
    cross, _created = record_interview(open_assignment, interview_payload(codes), auditor)
    for number in range(2):
        record_interview(open_assignment, interview_payload(codes, f"PA01HH00990{10 + number}", 6 + number), auditor)
    review_response(cross, ReviewState.HAS_ISSUES, SECRET_COMMENT, hq)
    record_interview(reopened, interview_payload(codes, "PA02HH0000001", 8), auditor_b)
    submit_assignment(reopened, auditor_b)
    reopen_assignment(reopened, SECRET_REOPEN, hq)
    record_interview(submitted, interview_payload(codes, "PA03HH0000001", 6), _auditor_of(c))
    submit_assignment(submitted, None)
    _key_row, api_key = create_api_key("security tests", hq)
    db.session.commit()
    invitation, token = make_invitation(campaign, unit=b)
    used, used_token = make_invitation(campaign, unit=b)
    submit_response(
        campaign=campaign, unit=b, source=campaign.web_source, channel=Channel.WEB,
        customer_group=CustomerGroup.HOUSEHOLD, respondent_id=f"invitation-{used.id}",
        answers={code: 9 for code in codes}, idempotency_key=f"invitation-{used.id}", invitation=used,
        actor="customer",
    )
    assert consultant is not None
    world = World(campaign, units, open_assignment, reopened, submitted, cross, consultant, token, used_token,
                  hq, auditor, auditor_b, manager, api_key)
    db.session.expire_all()
    assert world.reopened_assignment.status == AssignmentStatus.OPEN
    return world


def _auditor_of(unit: Unit) -> User:
    user = staff_account(f"auditor.{unit.code}@evnnpc.vn", Role.AUDITOR, unit)
    db.session.commit()
    return user


#: Each account's scrypt hash, made once per run: scrypt is slow on purpose and every test builds a world.
PASSWORD_HASHES: dict[str, str] = {}


def staff_account(email: str, role: Role, unit: Unit | None) -> User:
    """An account with PASSWORD, hashed (salted, scrypt) by the application once per e-mail and run."""
    if email not in PASSWORD_HASHES:
        PASSWORD_HASHES[email] = create_user(email, role, unit, PASSWORD).password_hash
        return db.session.scalars(sa.select(User).where(User.email == email)).one()
    user = User(email=email, password_hash=PASSWORD_HASHES[email], role=role, unit=unit)
    db.session.add(user)
    db.session.flush()
    return user


def token_page(world: World, role: str) -> str:
    """A page that gives ``role`` a form, hence a CSRF token."""
    return {"anonymous": "/login", "customer": f"/s/{world.token}/1", "hq": "/hq/",
            "auditor": f"/audit/assignments/{world.open_assignment.id}/interviews/new",
            "manager": f"/unit/{world.units[1].code}"}[role]


# --- Routes --------------------------------------------------------------------------------------

ROLES = ("anonymous", "customer", "hq", "auditor", "manager", "api")


def role_email(world: World, role: str) -> str | None:
    return {"hq": world.hq.email, "auditor": world.auditor.email, "manager": world.manager.email}.get(role)


def argument_values(world: World, rule: Rule) -> list[dict[str, Any]]:
    """Real values for a route's arguments (several where a route has several meaningful ones)."""
    values: dict[str, list[Any]] = {
        "code": [world.campaign.code],
        "assignment_id": [world.open_assignment.id],
        "response_id": [world.cross_response.id],
        "token": [world.token, world.used_token],
        "number": [1],
        "name": [next(iter(charts.CHARTS))],
        "fmt": ["csv", "xlsx", "pdf"],
        "unit_code": [world.units[1].code],
        "filename": ["app.css"],
    }
    if rule.endpoint == "public.page":
        values["token"] = [world.token]
    combos: list[dict[str, Any]] = [{}]
    for argument in sorted(rule.arguments):
        if argument not in values:
            raise AssertionError(f"no test value for <{argument}> of {rule.rule}: add one to argument_values")
        combos = [{**combo, argument: value} for combo in combos for value in values[argument]]
    return combos


def app_rules(app: Flask, method: str) -> list[Rule]:
    """The app's rules that answer ``method``, in a stable order."""
    return sorted((r for r in app.url_map.iter_rules() if method in (r.methods or ())), key=lambda r: (r.rule, r.endpoint))


def path_with(rule: Rule, values: dict[str, str]) -> str:
    """The rule's path with raw (already URL-safe) text in place of each ``<converter:argument>``."""
    def replace(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return re.sub(r"<(?:[^<>]*:)?(\w+)>", replace, rule.rule)


# --- Looking at what the app stored and rendered ---------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[a-zA-Z][^>]*\sstyle\s*=", re.IGNORECASE)
STYLE_ELEMENT = re.compile(r"<style\b", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)


def inline_code(html: str) -> list[str]:
    """Inline scripts, style attributes or elements, event handlers and javascript: URLs in a page."""
    found = []
    for name, pattern in (("inline <script>", INLINE_SCRIPT), ("style attribute", STYLE_ATTRIBUTE),
                          ("<style> element", STYLE_ELEMENT), ("event handler attribute", EVENT_HANDLER),
                          ("javascript: URL", JAVASCRIPT_URL)):
        for match in pattern.finditer(html):
            found.append(f"{name}: {match.group(0)[:120]}")
    return found


def table_rows(table: sa.Table) -> list[tuple[Any, ...]]:
    """Every row of a table, in primary-key order, as plain values."""
    order = list(table.primary_key.columns) or list(table.columns)
    return [tuple(row) for row in db.session.execute(sa.select(table).order_by(*order))]


def fingerprint(exclude_exports: bool = True) -> dict[str, str]:
    """A digest of every table's rows, so a test can tell that a request changed nothing.

    Export events are left out when asked: a successful download is allowed (required) to add one,
    which moves the audit chain's head too (any other event still shows in audit_event).
    """
    db.session.expire_all()
    digests = {}
    for table in db.metadata.sorted_tables:
        if exclude_exports and table.name == "audit_chain_head":
            continue
        rows = table_rows(table)
        if exclude_exports and table.name == "audit_event":
            action = list(table.columns.keys()).index("action")
            rows = [row for row in rows if row[action] != "export"]
        digests[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    db.session.rollback()
    return digests


def changed_tables(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


def all_text_values() -> Iterator[tuple[str, str, str]]:
    """(table, column, text) for every stored value, JSON included, for searching the whole database."""
    db.session.expire_all()
    for table in db.metadata.sorted_tables:
        names = list(table.columns.keys())
        for row in table_rows(table):
            for name, value in zip(names, row, strict=True):
                if value is not None:
                    yield table.name, name, value if isinstance(value, str) else repr(value)
    db.session.rollback()


# --- Bad input ---------------------------------------------------------------------------------------

#: Elements that carry a message for the person: alerts, error flashes, visible field errors, error pages.
MESSAGE_PATTERNS = (
    re.compile(r'role="alert"[^>]*>\s*(<[^>]+>\s*)*[^<\s]'),
    re.compile(r'class="flash flash-error"[^>]*>\s*[^<\s]'),
    re.compile(r'<p class="field-error"(?![^>]*\bhidden\b)[^>]*>\s*[^<\s]'),
    re.compile(r'class="card error-page[^"]*">\s*<h1>\s*[^<\s]'),
)


def says_what_is_wrong(response: Any) -> bool:
    """True when a refused request tells the person why: a JSON error, or a visible message in the page."""
    if response.is_json:
        body = response.get_json(silent=True) or {}
        return bool(body.get("errors") or body.get("error"))
    html = response.get_data(as_text=True)
    return any(pattern.search(html) for pattern in MESSAGE_PATTERNS)


def row_counts() -> dict[str, int]:
    """Rows per table, counted in SQL."""
    db.session.expire_all()
    counts = {table.name: int(db.session.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
              for table in db.metadata.sorted_tables}
    db.session.rollback()
    return counts
