"""Staff accounts."""

from __future__ import annotations

import hashlib
import re
import secrets

import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import ApiKey, Role, Unit, User, utcnow

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 10


class AccountError(ValueError):
    """An account that cannot be created as asked; the message says why."""


def hash_password(password: str) -> str:
    """A salted scrypt hash (Werkzeug's current default)."""
    return generate_password_hash(password, method="scrypt")


def password_matches(user: User, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


def create_user(email: str, role: Role, unit: Unit | None, password: str) -> User:
    """Create an account; auditors and managers belong to a unit, HQ to none. The caller commits."""
    email = email.strip().lower()
    if not EMAIL_PATTERN.match(email) or len(email) > 254:
        raise AccountError(f"'{email}' is not an e-mail address")
    if role in (Role.AUDITOR, Role.MANAGER) and unit is None:
        raise AccountError(f"a {role} account needs --unit")
    if role == Role.HQ and unit is not None:
        raise AccountError("an hq account does not belong to a unit; leave out --unit")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if db.session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise AccountError(f"an account for {email} already exists")
    user = User(email=email, password_hash=hash_password(password), role=role, unit=unit)
    db.session.add(user)
    db.session.flush()
    return user


# --- API keys (read-only JSON API) ---------------------------------------------------------------

#: Characters of a key shown in listings, so HQ can tell keys apart without seeing them.
API_KEY_PREFIX_LENGTH = 8


def user_snapshot(user: User) -> dict[str, object]:
    """What the audit trail records about an account (never the password hash)."""
    return {
        "email": user.email,
        "role": str(user.role),
        "unit": user.unit.code if user.unit else None,
        "active": user.active,
    }


def hash_api_key(key: str) -> str:
    """SHA-256 of an API key: keys are long random strings, so a plain hash is enough and fast to look up."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_api_key(name: str, user: User | None = None) -> tuple[ApiKey, str]:
    """Make a new API key: the row and the key itself, shown once and never stored. The caller commits."""
    name = name.strip()
    if not name or len(name) > 120:
        raise AccountError("give the key a name of 1 to 120 characters, e.g. the system that will use it")
    key = "evn_" + secrets.token_urlsafe(32)
    api_key = ApiKey(
        name=name,
        prefix=key[: API_KEY_PREFIX_LENGTH + 4],
        key_hash=hash_api_key(key),
        created_by_id=user.id if user else None,
    )
    db.session.add(api_key)
    db.session.flush()
    return api_key, key


def find_api_key(key: str) -> ApiKey | None:
    """The active API key matching ``key``, or None (unknown or revoked)."""
    if not key or len(key) > 200:
        return None
    return db.session.scalar(sa.select(ApiKey).where(ApiKey.key_hash == hash_api_key(key), ApiKey.revoked_at.is_(None)))


def revoke_api_key(prefix: str) -> ApiKey:
    """Revoke the one active key starting with ``prefix``. The caller commits."""
    prefix = prefix.strip()
    if len(prefix) < 6:
        raise AccountError("give at least the first 6 characters of the key, as `flask users api-key list` shows them")
    head = prefix[: API_KEY_PREFIX_LENGTH + 4]
    matches = list(
        db.session.scalars(
            sa.select(ApiKey).where(ApiKey.revoked_at.is_(None), ApiKey.prefix.startswith(head, autoescape=True))
        )
    )
    if not matches:
        raise AccountError(f"no active API key starts with '{prefix}'; see `flask users api-key list`")
    if len(matches) > 1:
        raise AccountError(f"{len(matches)} active keys start with '{prefix}'; give more characters")
    matches[0].revoked_at = utcnow()
    return matches[0]
