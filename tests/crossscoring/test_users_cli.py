"""`flask users create` and `flask users api-key …`."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import ApiKey, AuditEvent, Role, User
from survey.services.users import find_api_key, password_matches


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_create_auditor_with_password_from_stdin(runner, make_units):
    make_units(3)
    result = runner.invoke(
        args=["users", "create", "Auditor.One@EVNNPC.vn", "--role", "auditor", "--unit", "bac-kan", "--password-stdin"],
        input="a long enough secret\n",
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(sa.select(User))
    assert (user.email, user.role, user.unit.code) == ("auditor.one@evnnpc.vn", Role.AUDITOR, "bac-kan")
    assert user.password_hash.startswith("scrypt:") and password_matches(user, "a long enough secret")
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.entity == "user"))
    assert event.action == "create" and event.after["role"] == "auditor" and "password" not in str(event.after)


def test_create_prompts_twice_hidden(runner):
    result = runner.invoke(args=["users", "create", "hq@evnnpc.vn", "--role", "hq"],
                           input="another secret 1\nanother secret 1\n")
    assert result.exit_code == 0, result.output
    assert "another secret 1" not in result.output  # hidden input
    assert result.output.count("Password") + result.output.count("Repeat") >= 2
    assert password_matches(db.session.scalar(sa.select(User)), "another secret 1")


def test_prompt_mismatch_asks_again(runner):
    result = runner.invoke(args=["users", "create", "hq@evnnpc.vn", "--role", "hq"],
                           input="first secret 12\nother secret 12\nfinal secret 12\nfinal secret 12\n")
    assert result.exit_code == 0, result.output
    assert password_matches(db.session.scalar(sa.select(User)), "final secret 12")


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["a@evnnpc.vn", "--role", "auditor", "--unit", "nowhere"], "long password 1\n", "unknown unit 'nowhere'"),
        (["a@evnnpc.vn", "--role", "auditor"], "long password 1\n", "add --unit CODE"),
        (["m@evnnpc.vn", "--role", "manager"], "long password 1\n", "add --unit CODE"),
        (["h@evnnpc.vn", "--role", "hq", "--unit", "bac-kan"], "long password 1\n", "does not belong to a unit"),
        (["a@evnnpc.vn", "--role", "auditor", "--unit", "bac-kan"], "short\n", "at least 10 characters"),
        (["not-an-email", "--role", "hq"], "long password 1\n", "is not an e-mail address"),
        (["x@evnnpc.vn", "--role", "king"], "long password 1\n", "king"),
        (["taken@evnnpc.vn", "--role", "hq"], "long password 1\n", "already exists"),
    ],
)
def test_create_refuses_bad_input_and_changes_nothing(runner, make_units, make_user, args, stdin, message):
    make_units(3)
    make_user("taken@evnnpc.vn", Role.HQ)
    users_before, events_before = count(User), count(AuditEvent)
    result = runner.invoke(args=["users", "create", *args, "--password-stdin"], input=stdin)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert (count(User), count(AuditEvent)) == (users_before, events_before)


def test_api_key_create_list_revoke(runner):
    result = runner.invoke(args=["users", "api-key", "create", "Power BI dashboard"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    stored = db.session.scalar(sa.select(ApiKey))
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in (stored.prefix, stored.name) and key.startswith(stored.prefix)
    assert find_api_key(key).id == stored.id
    assert find_api_key(key + "x") is None

    listing = runner.invoke(args=["users", "api-key", "list"])
    assert stored.prefix in listing.output and "Power BI dashboard" in listing.output and "active" in listing.output
    assert key not in listing.output

    revoked = runner.invoke(args=["users", "api-key", "revoke", stored.prefix])
    assert revoked.exit_code == 0, revoked.output
    db.session.expire_all()
    assert find_api_key(key) is None
    assert "revoked" in runner.invoke(args=["users", "api-key", "list"]).output
    again = runner.invoke(args=["users", "api-key", "revoke", stored.prefix])
    assert again.exit_code == 1 and "no active API key" in again.output
    actions = db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.entity == "api_key")).all()
    assert actions == ["create", "revoke"]


def test_api_key_revoke_needs_an_unambiguous_prefix(runner):
    db.session.add_all(
        [
            ApiKey(name="one", prefix="evn_abcdefgh", key_hash="1" * 64),
            ApiKey(name="two", prefix="evn_abcdxyzw", key_hash="2" * 64),
        ]
    )
    db.session.commit()
    short = runner.invoke(args=["users", "api-key", "revoke", "evn"])
    assert short.exit_code == 1 and "the first 6 characters" in short.output
    both = runner.invoke(args=["users", "api-key", "revoke", "evn_abcd"])
    assert both.exit_code == 1 and "2 active keys start with 'evn_abcd'" in both.output
    one = runner.invoke(args=["users", "api-key", "revoke", "evn_abcdx"])
    assert one.exit_code == 0, one.output
    db.session.expire_all()
    revoked = db.session.scalars(sa.select(ApiKey.name).where(ApiKey.revoked_at.is_not(None))).all()
    assert revoked == ["two"]


def test_api_key_needs_a_name(runner):
    result = runner.invoke(args=["users", "api-key", "create", "   "])
    assert result.exit_code == 1 and "give the key a name" in result.output
    assert count(ApiKey) == 0
