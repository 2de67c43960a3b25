"""The audit trail: append-only events, each hashed together with the previous one.

Editing or deleting an event behind the application's back breaks the chain at that
event, which `flask audit verify` finds and names.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..extensions import db
from ..models import Assignment, AuditEvent, Response, User, utcnow

#: The chain's anchor: the "previous hash" of the first event.
GENESIS = "0" * 64


def canonical(value: Any) -> str:
    """Serialise a value the same way every time (sorted keys, no spaces, ISO timestamps)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def event_hash(event: AuditEvent) -> str:
    """SHA-256 of the event's content and the previous event's hash."""
    content = {
        "at": event.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": event.actor,
        "actor_id": event.actor_id,
        "action": event.action,
        "entity": event.entity,
        "entity_id": event.entity_id,
        "before": event.before,
        "after": event.after,
        "prev_hash": event.prev_hash,
    }
    return hashlib.sha256(canonical(content).encode("utf-8")).hexdigest()


#: The chain's head: one row holding the hash of the last event (and of the one before it).
#: Every append locks and moves it in the same transaction as it inserts the event, which
#: serialises appends: two transactions never fork the chain. Locking a row (rather than taking an
#: advisory lock and then reading the last event) lets PostgreSQL hand the waiting transaction the
#: head as the previous holder committed it, within one statement.
chain_head = sa.Table(
    "audit_chain_head",
    db.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.CheckConstraint("id = 1", name="single_row"),
)
_events = AuditEvent.__table__
HEAD_ID = 1
#: Whether the head row is there (a fresh or emptied database has none until `ensure_chain_head`).
HEAD_EXISTS = sa.exists().where(chain_head.c.id == HEAD_ID)


#: Lock the head and return its hash, creating a missing head row (a fresh or emptied database) from
#: the newest event. Updating the row to itself takes its lock (and, on PostgreSQL, waits for and
#: reads the latest version). Text, not Core: SQLAlchemy cannot cache a compiled ON CONFLICT.
_HEAD = sa.text(
    "INSERT INTO audit_chain_head (id, prev_hash, hash) VALUES (:id, "
    "COALESCE((SELECT hash FROM audit_event ORDER BY id DESC LIMIT 1), :genesis), "
    "COALESCE((SELECT hash FROM audit_event ORDER BY id DESC LIMIT 1), :genesis)) "
    "ON CONFLICT (id) DO UPDATE SET hash = audit_chain_head.hash RETURNING hash"
).bindparams(id=HEAD_ID, genesis=GENESIS)
_MOVE_HEAD = (
    sa.update(chain_head)
    .where(chain_head.c.id == HEAD_ID)
    .values(prev_hash=sa.bindparam("p_prev_hash"), hash=sa.bindparam("p_hash"))
)


def _previous_hash(connection: sa.Connection) -> str:
    """Lock the chain's head until the transaction ends and return the last event's hash."""
    return str(connection.execute(_HEAD).scalar_one())


def ensure_chain_head(connection: sa.Connection | None = None) -> None:
    """Create the chain's head if it is missing, in a transaction of its own (commits).

    On the ORM session's connection unless ``connection`` (a Core connection, not the session's) is given.
    """
    if connection is None:
        _previous_hash(db.session.connection())
        db.session.commit()
    else:
        _previous_hash(connection)
        connection.commit()


def record(
    action: str,
    entity: str,
    entity_id: Any = None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    user: User | None = None,
    actor: str | None = None,
) -> AuditEvent:
    """Append an event to the trail in the current transaction; the caller commits."""
    connection = db.session.connection()
    previous = _previous_hash(connection)
    event = AuditEvent(
        at=utcnow(),
        actor_id=user.id if user is not None else None,
        actor=actor or (user.email if user is not None else "system"),
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        # Round-trip through JSON so the hash sees exactly what the database will return.
        before=json.loads(canonical(before)) if before is not None else None,
        after=json.loads(canonical(after)) if after is not None else None,
        prev_hash=previous,
    )
    event.hash = event_hash(event)
    db.session.add(event)
    connection.execute(_MOVE_HEAD, {"p_prev_hash": previous, "p_hash": event.hash})
    return event


def event_text(
    action: str,
    entity: str,
    *,
    after: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    actor: str,
    at: dt.datetime,
) -> tuple[dict[str, Any], str]:
    """An event's column values and its canonical text up to its entity id (what `event_hash` hashes).

    ``before`` and ``after`` come back as their canonical JSON text (or None), as they appear in the
    event's text: each snapshot is serialised once. The caller stores them as JSON (`append` parses
    them; the web submission's statement casts the text). The keys sort so that ``entity_id`` and
    ``prev_hash`` come last: the full text is ``prefix + entity_id + '","prev_hash":"' + prev_hash + '"}'``,
    which lets the database finish it once it knows the new row's id and the chain's head.
    """
    before_text = canonical(before) if before is not None else None
    after_text = canonical(after) if after is not None else None
    stamp = at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    # canonical() of the whole event, written out in its sorted key order (tests/services/test_audit_text.py).
    prefix = (
        f'{{"action":{canonical(action)},"actor":{canonical(actor)},"actor_id":null,'
        f'"after":{after_text or "null"},"at":{canonical(stamp)},"before":{before_text or "null"},'
        f'"entity":{canonical(entity)},"entity_id":"'
    )
    values: dict[str, Any] = {
        "at": at,
        "actor_id": None,
        "actor": actor,
        "action": action,
        "entity": entity,
        "before": before_text,
        "after": after_text,
    }
    return values, prefix


_APPEND = sa.insert(_events)
_ID_TO_PREV = '","prev_hash":"'


def text_digest(prefix: Any, entity_id: Any, previous: Any) -> sa.ColumnElement[str]:
    """SQL for an event's hash from `event_text`'s prefix, the entity id and the previous hash (PostgreSQL)."""
    text = prefix + sa.cast(entity_id, sa.Text) + _ID_TO_PREV + previous + '"}'
    return sa.func.encode(sa.func.sha256(sa.func.convert_to(text, "UTF8")), "hex")


def append(
    action: str,
    entity: str,
    entity_id: Any,
    *,
    after: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    actor: str,
    connection: sa.Connection | None = None,
) -> None:
    """`record` without the ORM, for Core callers (on ``connection``, else the session's); the caller commits.

    (PostgreSQL callers that insert the audited row in a statement of their own can append its
    event in that same statement with `event_text` and `text_digest`, as web submissions do.)
    """
    if connection is None:
        if db.session.new:
            db.session.flush()  # events keep the order in which they were recorded
        connection = db.session.connection()
    values, prefix = event_text(action, entity, after=after, before=before, actor=actor, at=utcnow())
    previous = _previous_hash(connection)
    entity_text = json.dumps(str(entity_id), ensure_ascii=False)[1:-1]  # as it appears in the canonical text
    digest = hashlib.sha256(f"{prefix}{entity_text}{_ID_TO_PREV}{previous}\"}}".encode()).hexdigest()
    snapshots = {name: json.loads(values[name]) if values[name] is not None else None for name in ("before", "after")}
    connection.execute(_APPEND, {**values, **snapshots, "entity_id": str(entity_id), "prev_hash": previous,
                                 "hash": digest})
    connection.execute(_MOVE_HEAD, {"p_prev_hash": previous, "p_hash": digest})


# --- Verification ------------------------------------------------------------------------------

#: Entities whose current rows must still match the ``after`` snapshot of their last event.
SNAPSHOT_ENTITIES = ("response", "assignment")
BATCH = 1000


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of `verify_chain`: ok, how many events were checked, and the first broken record."""

    ok: bool
    checked: int
    first_broken_id: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class _Import:
    """An import event: one event for many responses, named by their id runs (and a digest, when recorded)."""

    event_id: int
    file: str
    ranges: list[tuple[int, int]]
    digest: str | None


@dataclass
class _Trail:
    """What the chain walk remembers for the row checks."""

    last_event: dict[tuple[str, str], int]
    first_event: dict[int, int]  # response id → its first own event (for imported rows)
    imports: list[_Import]


def verify_chain() -> VerifyResult:
    """Recompute every event's hash in id order, check the links, then check audited rows against their last event."""
    columns = (
        AuditEvent.id,
        AuditEvent.at,
        AuditEvent.actor,
        AuditEvent.actor_id,
        AuditEvent.action,
        AuditEvent.entity,
        AuditEvent.entity_id,
        AuditEvent.before,
        AuditEvent.after,
        AuditEvent.prev_hash,
        AuditEvent.hash,
    )
    expected_prev = GENESIS
    previous_id: int | None = None
    checked = 0
    trail = _Trail({}, {}, [])
    # The head is read before the events: an event appended meanwhile comes after the one it names.
    head = db.session.scalar(sa.select(chain_head.c.hash).where(chain_head.c.id == HEAD_ID))
    head_seen = head is None or head == GENESIS
    result = db.session.execute(sa.select(*columns).order_by(AuditEvent.id).execution_options(yield_per=BATCH))
    try:
        for event in result:
            checked += 1
            head_seen = head_seen or event.hash == head
            if event.prev_hash != expected_prev:
                where = f"audit event {previous_id}" if previous_id is not None else "the start of the trail"
                return VerifyResult(
                    False,
                    checked,
                    event.id,
                    f"audit event {event.id} does not link to {where}: "
                    "an event between them was deleted, or the earlier one was changed",
                )
            if event_hash(event) != event.hash:
                return VerifyResult(
                    False,
                    checked,
                    event.id,
                    f"audit event {event.id} ({event.action} {event.entity} {event.entity_id}) was changed "
                    "after it was recorded: its hash does not match its content",
                )
            expected_prev = event.hash
            previous_id = event.id
            _remember(trail, event)
    finally:
        # A server-side cursor on PostgreSQL: close it even when stopping early.
        result.close()
    if not head_seen:
        where = f"after audit event {previous_id}" if previous_id is not None else "at the start"
        return VerifyResult(
            False,
            checked,
            previous_id,
            f"the audit trail ends {where}, but its head names a later event: "
            "the newest events were deleted",
        )
    problem = _check_rows(trail)
    if problem is not None:
        return VerifyResult(False, checked, problem[0], problem[1])
    return VerifyResult(True, checked)


def _remember(trail: _Trail, event: Any) -> None:
    if event.entity in SNAPSHOT_ENTITIES and event.entity_id is not None and event.entity_id.isdigit():
        trail.last_event[(event.entity, event.entity_id)] = event.id
        if event.entity == "response":
            trail.first_event.setdefault(int(event.entity_id), event.id)
    after = event.after
    if event.action == "import" and isinstance(after, dict) and isinstance(after.get("response_ids"), list):
        ranges = [(int(first), int(last)) for first, last in after["response_ids"]]
        trail.imports.append(_Import(event.id, str(after.get("file", "")), ranges, after.get("rows_sha256")))


def responses_digest(id_ranges: Sequence[Sequence[int]], replace: dict[int, dict[str, Any]] | None = None) -> str:
    """SHA-256 over the audit snapshots of the responses in these [first, last] id runs, in id order.

    An import can record it as ``after["rows_sha256"]`` next to ``after["response_ids"]``; `verify_chain`
    then notices an imported row changed behind the application's back. ``replace`` gives the snapshot
    to use for some rows instead of their current one (their state at import time).
    """
    from .responses import response_snapshot  # the services import this module to record events

    digest = hashlib.sha256()
    for first, last in sorted((int(a), int(b)) for a, b in id_ranges):
        rows = db.session.scalars(
            sa.select(Response)
            .where(Response.id.between(first, last))
            .order_by(Response.id)
            .execution_options(yield_per=BATCH)
        )
        for row in rows:
            snapshot = (replace or {}).get(row.id)
            if snapshot is None:
                snapshot = json.loads(canonical(response_snapshot(row)))
            digest.update(canonical([row.id, snapshot]).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _row_snapshots(entity: str, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Snapshots of the current rows, in the same JSON form as recorded in the trail."""
    from .assignments import assignment_snapshot
    from .responses import response_snapshot

    model, snapshot = {"response": (Response, response_snapshot), "assignment": (Assignment, assignment_snapshot)}[
        entity
    ]
    rows = db.session.scalars(sa.select(model).where(model.id.in_(ids)))
    return {row.id: json.loads(canonical(snapshot(row))) for row in rows}


def _check_rows(trail: _Trail) -> tuple[int | None, str] | None:
    """The audited row that differs from its event with the smallest id, or a row that has no event at all."""
    problems: list[tuple[int | None, str]] = []
    for entity in SNAPSHOT_ENTITIES:
        problems.extend(_check_snapshots(entity, trail.last_event))
    problems.extend(_check_imports(trail))
    for entity in SNAPSHOT_ENTITIES:
        problem = _unrecorded(entity, trail.imports if entity == "response" else [])
        if problem is not None:
            problems.append((None, problem))
    if not problems:
        return None
    problems.sort(key=lambda p: (p[0] is None, p[0] or 0))
    return problems[0]


def _check_snapshots(entity: str, last_event: dict[tuple[str, str], int]) -> list[tuple[int | None, str]]:
    """Rows whose current state is not the ``after`` of their last event (or that vanished without a delete)."""
    problems: list[tuple[int | None, str]] = []
    events = {int(key[1]): event_id for key, event_id in last_event.items() if key[0] == entity}
    ordered = sorted(events)
    for start in range(0, len(ordered), BATCH):
        ids = ordered[start : start + BATCH]
        current = _row_snapshots(entity, ids)
        recorded = {
            row.id: row
            for row in db.session.execute(
                sa.select(AuditEvent.id, AuditEvent.action, AuditEvent.after).where(
                    AuditEvent.id.in_([events[i] for i in ids])
                )
            )
        }
        for row_id in ids:
            event = recorded[events[row_id]]
            problem = _compare(entity, row_id, event, current.get(row_id))
            if problem is not None:
                problems.append((event.id, problem))
    return problems


def _check_imports(trail: _Trail) -> list[tuple[int | None, str]]:
    """Imported responses (one event per file): none deleted behind the back, and their digest unchanged."""
    problems: list[tuple[int | None, str]] = []
    # Rows deleted through the application have their own delete event.
    deleted_in_app = {
        int(entity_id)
        for entity_id in db.session.scalars(
            sa.select(AuditEvent.entity_id).where(AuditEvent.entity == "response", AuditEvent.action == "delete")
        )
        if entity_id is not None and entity_id.isdigit()
    }
    for item in trail.imports:
        for first, last in item.ranges:
            present = db.session.scalar(
                sa.select(sa.func.count()).select_from(Response).where(Response.id.between(first, last))
            )
            expected = (last - first + 1) - sum(first <= i <= last for i in deleted_in_app)
            if present < expected:
                ids = set(db.session.scalars(sa.select(Response.id).where(Response.id.between(first, last))))
                missing = min(i for i in range(first, last + 1) if i not in ids and i not in deleted_in_app)
                reason = (
                    f"response {missing} was deleted outside the application "
                    f"(imported by audit event {item.event_id}, file {item.file})"
                )
                problems.append((item.event_id, reason))
                break
        if item.digest is None:
            continue
        at_import = _states_at_import(item, trail)
        if responses_digest(item.ranges, at_import) != item.digest:
            reason = (
                f"responses imported by audit event {item.event_id} (file {item.file}) differ from what was "
                "imported: a row was changed outside the application"
            )
            problems.append((item.event_id, reason))
    return problems


def _states_at_import(item: _Import, trail: _Trail) -> dict[int, dict[str, Any]]:
    """For imported rows changed later through the application: their state before that first change."""
    firsts = {
        row_id: event_id
        for row_id, event_id in trail.first_event.items()
        if event_id > item.event_id and any(first <= row_id <= last for first, last in item.ranges)
    }
    states: dict[int, dict[str, Any]] = {}
    ids = sorted(firsts.values())
    for start in range(0, len(ids), BATCH):
        rows = db.session.execute(
            sa.select(AuditEvent.entity_id, AuditEvent.before).where(AuditEvent.id.in_(ids[start : start + BATCH]))
        )
        states.update({int(entity_id): before for entity_id, before in rows if before is not None})
    return states


def _unrecorded(entity: str, imports: list[_Import]) -> str | None:
    """A row with no event of its own and not part of a recorded import: added behind the application's back."""
    model = {"response": Response, "assignment": Assignment}[entity]
    ranges = sorted(r for item in imports for r in item.ranges)
    starts = [first for first, _ in ranges]
    rows = db.session.scalars(
        sa.select(model.id)
        .where(~sa.exists().where(AuditEvent.entity == entity, AuditEvent.entity_id == sa.cast(model.id, sa.String)))
        .order_by(model.id)
        .execution_options(yield_per=BATCH * 10)
    )
    try:
        for row_id in rows:
            position = bisect.bisect_right(starts, row_id) - 1
            if position < 0 or ranges[position][1] < row_id:
                return f"{entity} {row_id} has no audit event: it was added outside the application"
    finally:
        rows.close()
    return None


def _compare(entity: str, row_id: int, event: Any, current: dict[str, Any] | None) -> str | None:
    """Why a row does not match its last event (None when it does)."""
    if event.action == "delete":
        if current is not None:
            return f"{entity} {row_id} exists, but audit event {event.id} recorded its deletion"
        return None
    if current is None:
        return (
            f"{entity} {row_id} was deleted outside the application "
            f"(its last audit event is {event.id}, {event.action})"
        )
    if event.after is None:
        return None
    differences = differences_between(event.after, current)
    if not differences:
        return None
    shown = "; ".join(differences[:3]) + ("; …" if len(differences) > 3 else "")
    return f"{entity} {row_id} differs from audit event {event.id}: {shown}"


def differences_between(recorded: Any, current: Any, path: str = "") -> list[str]:
    """Human-readable differences between two JSON values, e.g. ``answers.supply_stability 7 → 9``."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        found: list[str] = []
        for key in sorted(set(recorded) | set(current), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in current:
                found.append(f"{sub} {_show(recorded[key])} → (missing)")
            elif key not in recorded:
                found.append(f"{sub} (missing) → {_show(current[key])}")
            else:
                found.extend(differences_between(recorded[key], current[key], sub))
        return found
    if recorded != current or type(recorded) is not type(current) and not _same_number(recorded, current):
        return [f"{path or 'value'} {_show(recorded)} → {_show(current)}"]
    return []


def _same_number(a: Any, b: Any) -> bool:
    return isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) and a == b


def _show(value: Any) -> str:
    return "empty" if value is None else canonical(value)
