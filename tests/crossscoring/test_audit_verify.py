"""The audit trail: `flask audit verify` finds changes made behind the application's back and names them."""

from __future__ import annotations

import json

import sqlalchemy as sa

from survey.extensions import db
from survey.models import AuditEvent, Response
from survey.services.assignments import submit_assignment
from survey.services.audit import differences_between, verify_chain
from survey.services.review import review_response

from .conftest import add_cross_response, answers_for


def last_event_id(entity: str, entity_id: int) -> int:
    return db.session.scalar(
        sa.select(sa.func.max(AuditEvent.id)).where(AuditEvent.entity == entity, AuditEvent.entity_id == str(entity_id))
    )


def raw(sql: str, **params) -> None:
    """Change the database directly, as someone bypassing the application would."""
    db.session.remove()
    with db.engine.begin() as connection:
        connection.execute(sa.text(sql), params)


def drop_last_event(event_id: int) -> None:
    """Delete the newest event and move the chain's head back to the one before it, covering the deletion."""
    raw("DELETE FROM audit_event WHERE id = :id", id=event_id)
    raw("UPDATE audit_chain_head SET hash = (SELECT hash FROM audit_event ORDER BY id DESC LIMIT 1)")


def test_untouched_trail_verifies(cross, runner):
    response = add_cross_response(cross.campaign, cross.assignments[0], "r-1", user=cross.auditor_a)
    review_response(response, "has_issues", "Interview date missing.", cross.hq)
    submit_assignment(cross.assignments[1], cross.auditor_a)
    result = runner.invoke(args=["audit", "verify"])
    total = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"OK: {total:,} events, chain intact"
    assert total == 14 + 1 + 3  # assignments created, the generation, one response, one review, one submit


def test_response_changed_in_the_database_is_named(cross, runner):
    response = add_cross_response(cross.campaign, cross.assignments[0], "r-1", value=7)
    add_cross_response(cross.campaign, cross.assignments[0], "r-2", value=7)
    event_id = last_event_id("response", response.id)
    answers = dict(response.answers, supply_stability=9)
    raw("UPDATE response SET answers = :answers WHERE id = :id", answers=json.dumps(answers), id=response.id)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    expected = f"response {response.id} differs from audit event {event_id}: answers.supply_stability 7 → 9"
    assert expected in result.output
    outcome = verify_chain()
    assert not outcome.ok and outcome.first_broken_id == event_id


def test_review_state_changed_in_the_database_is_named(cross):
    response = add_cross_response(cross.campaign, cross.assignments[0], "r-1")
    raw("UPDATE response SET review_state = 'approved' WHERE id = :id", id=response.id)
    outcome = verify_chain()
    assert not outcome.ok
    assert f"response {response.id} differs" in outcome.reason
    assert 'review_state "received" → "approved"' in outcome.reason


def test_assignment_changed_in_the_database_is_named(cross, runner):
    assignment = cross.assignments[3]
    raw("UPDATE assignment SET quota = 300 WHERE id = :id", id=assignment.id)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"assignment {assignment.id} differs from audit event" in result.output and "quota 3 → 300" in result.output


def test_deleted_response_is_named(cross):
    response = add_cross_response(cross.campaign, cross.assignments[0], "r-1")
    raw("DELETE FROM response WHERE id = :id", id=response.id)
    outcome = verify_chain()
    assert not outcome.ok and f"response {response.id} was deleted outside the application" in outcome.reason


def test_response_inserted_without_event_is_named(cross):
    response = add_cross_response(cross.campaign, cross.assignments[0], "r-1")
    drop_last_event(last_event_id("response", response.id))
    outcome = verify_chain()
    # With the head moved back too, the chain itself looks whole, but the row no longer has its event.
    assert not outcome.ok and f"response {response.id} has no audit event" in outcome.reason


def test_web_response_inserted_without_event_is_named(cross, make_invitation):
    """A customer's submission stores its event in the same statement; a row left without it is named."""
    from survey.questionnaire import layout_of
    from survey.services.responses import submit_web_response

    invitation, _token = make_invitation(cross.campaign)
    with db.engine.connect() as connection:
        response_id = submit_web_response(
            connection,
                layout=layout_of(cross.campaign.questionnaire), campaign_id=cross.campaign.id,
            unit_id=invitation.unit_id, source=cross.campaign.web_source, customer_group=invitation.customer_group,
            invitation_id=invitation.id, answers=answers_for(cross.campaign),
        )
    assert verify_chain().ok
    drop_last_event(last_event_id("response", response_id))
    outcome = verify_chain()
    assert not outcome.ok and f"response {response_id} has no audit event" in outcome.reason


def test_edited_event_breaks_the_chain(cross, runner):
    add_cross_response(cross.campaign, cross.assignments[0], "r-1")
    target = db.session.scalar(sa.select(AuditEvent.id).order_by(AuditEvent.id).offset(4).limit(1))
    raw("UPDATE audit_event SET actor = 'someone else' WHERE id = :id", id=target)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"audit event {target} (" in result.output and "was changed after it was recorded" in result.output
    assert verify_chain().first_broken_id == target


def test_edited_snapshot_with_recomputed_hash_still_breaks_the_link(cross):
    """Rewriting an event and its own hash does not help: the next event points to the old hash."""
    events = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)).all()
    from survey.services.audit import event_hash

    victim = events[2]
    victim.after = dict(victim.after, quota=99)
    victim.hash = event_hash(victim)
    db.session.commit()
    outcome = verify_chain()
    assert not outcome.ok and outcome.first_broken_id == events[3].id
    assert f"does not link to audit event {events[2].id}" in outcome.reason


def test_deleted_event_breaks_the_chain(cross, runner):
    events = db.session.scalars(sa.select(AuditEvent.id).order_by(AuditEvent.id)).all()
    raw("DELETE FROM audit_event WHERE id = :id", id=events[5])
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"audit event {events[6]} does not link to audit event {events[4]}" in result.output


def test_deleted_newest_events_are_named(cross, runner):
    """Deleting the last events leaves an intact chain, but not the one its head names."""
    events = db.session.scalars(sa.select(AuditEvent.id).order_by(AuditEvent.id)).all()
    raw("DELETE FROM audit_event WHERE id >= :id", id=events[-2])
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert f"the audit trail ends after audit event {events[-3]}, but its head names a later event" in result.output


def test_a_new_event_after_a_deletion_of_the_newest_is_still_refused(cross, runner):
    """An event appended after the newest were deleted links to the head, not to the remaining trail."""
    from survey.services import audit

    events = db.session.scalars(sa.select(AuditEvent.id).order_by(AuditEvent.id)).all()
    raw("DELETE FROM audit_event WHERE id = :id", id=events[-1])
    audit.record("note", "campaign", "C-after", after={"text": "appended after the deletion"})
    db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert "does not link to audit event" in result.output


def test_empty_trail_is_ok(app, runner):
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and result.output.strip() == "OK: 0 events, chain intact"


def test_differences_are_readable():
    assert differences_between({"a": {"x": 7}, "b": 1}, {"a": {"x": 9}, "b": 1}) == ["a.x 7 → 9"]
    assert differences_between({"a": 1}, {"a": 1.0}) == []
    assert differences_between({"a": None}, {"a": 3}) == ["a empty → 3"]
    assert differences_between({"a": 1}, {}) == ["a 1 → (missing)"]


# --- Imports: one event for a whole file --------------------------------------------------------


def import_consultant_file(cross, rows: int = 4):
    """Import a small consultant file through the real service (one audit event for the file)."""
    import io

    from survey.services.imports import import_consultant

    codes = [item.code for item in cross.campaign.questionnaire.items]
    lines = [",".join(["unit_code", "respondent_id", "customer_group", *codes])]
    for i in range(rows):
        lines.append(",".join([cross.units[i % 3].code, f"c-{i}", "household", *["7"] * len(codes)]))
    data = io.BytesIO(("\n".join(lines) + "\n").encode("utf-8"))
    import_consultant(cross.campaign, data, file_name="consultant.csv")
    return db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "import"))


def test_imported_rows_are_covered_by_their_import_event(cross, runner):
    event = import_consultant_file(cross)
    assert event.after["response_ids"], "the import names its rows"
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output


def test_imported_row_deleted_in_the_database_is_named(cross):
    event = import_consultant_file(cross)
    first, last = event.after["response_ids"][0]
    raw("DELETE FROM response WHERE id = :id", id=first + 1)
    outcome = verify_chain()
    assert not outcome.ok and f"response {first + 1} was deleted outside the application" in outcome.reason
    assert outcome.first_broken_id == event.id


def import_cross_file(cross, rows: int = 3):
    """Import paper interviews of the first assignment through the real service (one audit event for the file)."""
    import io

    from survey.services.imports import import_cross

    assignment = cross.assignments[0]
    codes = [item.code for item in cross.campaign.questionnaire.items]
    lines = [",".join(["rater_unit", "ratee_unit", "respondent_id", "customer_group", *codes])]
    for i in range(rows):
        lines.append(",".join([assignment.rater_unit.code, assignment.ratee_unit.code, f"p-{i}", "business",
                               *["6"] * len(codes)]))
    import_cross(cross.campaign, io.BytesIO(("\n".join(lines) + "\n").encode("utf-8")), file_name="paper.csv")
    return db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "import"))


def test_imported_rows_with_a_digest_detect_a_change(cross):
    """When an import records rows_sha256, a changed imported row is detected; a later review is not mistaken for it."""
    from survey.services import audit
    from survey.services.audit import responses_digest

    event = import_cross_file(cross)
    ranges = event.after["response_ids"]
    # Record an import event the way an importer that stores the digest would.
    audit.record("import", "campaign", cross.campaign.code,
                 after={"file": "with-digest.csv", "response_ids": ranges, "rows_sha256": responses_digest(ranges)})
    db.session.commit()
    first, last = ranges[0]
    review_response(db.session.get(Response, first), "approved", None, cross.hq)
    assert verify_chain().ok
    raw("UPDATE response SET respondent_index = 1.5 WHERE id = :id", id=last)
    outcome = verify_chain()
    assert not outcome.ok and "differ from what was imported" in outcome.reason and "with-digest.csv" in outcome.reason


def test_response_without_any_event_is_named(cross):
    import_consultant_file(cross, rows=2)
    added = add_cross_response(cross.campaign, cross.assignments[0], "r-1")
    drop_last_event(last_event_id("response", added.id))
    outcome = verify_chain()
    assert not outcome.ok and f"response {added.id} has no audit event" in outcome.reason
