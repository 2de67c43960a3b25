"""Staff accounts."""

from __future__ import annotations

import re

import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import Role, Unit, User

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
