"""API key check: ``Authorization: Bearer <key>`` against the stored SHA-256 of live keys."""

from __future__ import annotations

import hmac
import re

import sqlalchemy as sa

from ..extensions import db
from ..models import ApiKey
from ..services.users import hash_api_key

#: What a key may look like; anything else is refused before the database is asked.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9._~+/=-]{16,200}$")


def authenticate(header: str | None) -> ApiKey | None:
    """The live API key named by an Authorization header, or None (missing, malformed, unknown or revoked)."""
    if not header:
        return None
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not KEY_PATTERN.match(key):
        return None
    digest = hash_api_key(key)
    candidate = db.session.scalar(sa.select(ApiKey).where(ApiKey.key_hash == digest))
    # The lookup finds the row; the constant-time comparison is what decides.
    if candidate is None or not hmac.compare_digest(candidate.key_hash, digest):
        return None
    if candidate.revoked_at is not None:
        return None
    return candidate
