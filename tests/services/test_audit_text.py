"""An audit event's text as the web submission's statement hashes it: `audit.event_text` writes out
what `canonical()` makes of the whole event, and `event_hash` recomputes it from the stored row."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from survey.services.audit import canonical, event_text

AT = dt.datetime(2026, 11, 28, 9, 5, 7, 123456, tzinfo=dt.timezone(dt.timedelta(hours=7)))
SNAPSHOT = {"unit_id": 4, "answers": {"Q2": None, "Q1": 9}, "respondent_index": 7.25, "source": "consultant",
            "review_comment": 'Khách hàng nói "tốt" \\ ổn', "customer_group": "household"}


@pytest.mark.parametrize(("before", "after", "actor"), [
    (None, SNAPSHOT, "customer"),
    (SNAPSHOT, {**SNAPSHOT, "review_state": "accepted"}, "Nguyễn Văn An <an@pc.evn.vn>"),
    ({}, None, 'quote " and backslash \\'),
    (None, None, "system"),
])
def test_the_prefix_is_the_canonical_text_of_the_whole_event(before, after, actor):
    values, prefix = event_text("create", "response", before=before, after=after, actor=actor, at=AT)
    entity_id, previous = "12345", "ab" * 32
    content = {
        "at": AT.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": actor, "actor_id": None, "action": "create", "entity": "response", "entity_id": entity_id,
        "before": before, "after": after, "prev_hash": previous,
    }
    assert f'{prefix}{entity_id}","prev_hash":"{previous}"}}' == canonical(content)
    # The snapshots come back as the canonical text they have inside the event's text.
    assert values["before"] == (canonical(before) if before is not None else None)
    assert values["after"] == (canonical(after) if after is not None else None)
    assert values["after"] is None or json.loads(values["after"]) == after
