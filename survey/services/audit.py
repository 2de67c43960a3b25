"""The audit trail: append-only events, each hashed together with the previous one.

Editing or deleting an event behind the application's back breaks the chain at that
event, which `flask audit verify` finds and names.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import sqlalchemy as sa

from ..extensions import db
from ..models import AuditEvent, User, utcnow

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


def _lock_chain() -> None:
    """Serialise appends so two transactions never fork the chain (PostgreSQL; SQLite locks the file)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SELECT pg_advisory_xact_lock(727001)"))


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
    _lock_chain()
    last = db.session.scalar(sa.select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
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
        prev_hash=last or GENESIS,
    )
    event.hash = event_hash(event)
    db.session.add(event)
    return event
