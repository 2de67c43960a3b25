"""Configuration defaults; `instance/config.py` and the environment override them."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

#: Environment variables read at start-up, with the config key each one sets.
ENVIRONMENT_KEYS = {
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "SECRET_KEY": "SECRET_KEY",
    "PSEUDONYM_KEY": "PSEUDONYM_KEY",
    "REDIS_URL": "RATELIMIT_STORAGE_URI",
    "RATELIMIT_STORAGE_URI": "RATELIMIT_STORAGE_URI",
    "SURVEY_BASE_URL": "SURVEY_BASE_URL",
    "SURVEY_ENV": "SURVEY_ENV",
    "PROXY_COUNT": "PROXY_COUNT",
}


class Defaults:
    """Settings that are safe for a developer's machine."""

    SURVEY_ENV = "development"
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {"pool_pre_ping": True}
    # Customers answer on phones: a survey page is small, so a large body is an attack or a mistake.
    MAX_CONTENT_LENGTH = 16 * 1024 * 1024
    MAX_FORM_MEMORY_SIZE = 64 * 1024
    BABEL_DEFAULT_LOCALE = "vi"
    BABEL_DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
    LANGUAGES = ("vi", "en")
    WTF_CSRF_TIME_LIMIT = None  # a customer may leave the survey open for hours and resume
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    #: Staff are signed out after this many minutes without a request (survey/web.py, expire_idle_staff).
    STAFF_IDLE_MINUTES = 30
    RATELIMIT_STORAGE_URI = "memory://"
    # If Redis is unreachable, keep throttling in each process rather than failing the login page.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_HEADERS_ENABLED = True
    SURVEY_BASE_URL = "http://127.0.0.1:5000"
    INVITATION_DAYS = 60


def load_environment(config: dict[str, Any]) -> None:
    """Copy the documented environment variables into the config."""
    for variable, key in ENVIRONMENT_KEYS.items():
        value = os.environ.get(variable)
        if value:
            config[key] = value
    url = config.get("SQLALCHEMY_DATABASE_URI", "")
    # psycopg 3 is the driver we ship; accept the common postgres:// spellings.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://" + url[len(prefix):]


#: Values people copy from examples instead of generating a secret; refused in production.
PLACEHOLDER_SECRETS = frozenset(
    {"...", "change-me", "changeme", "change_me", "secret", "dev", "development", "default", "none", "null", "xxx"}
)


def ensure_secret(config: dict[str, Any], instance_path: str, key: str) -> None:
    """Give a development install a persistent random secret; refuse to guess one in production."""
    production = config.get("SURVEY_ENV") == "production"
    if config.get(key):
        if production and str(config[key]).strip().lower() in PLACEHOLDER_SECRETS:
            raise RuntimeError(
                f"{key} is a placeholder ({config[key]!r}). In production set a long random value, e.g. "
                "python -c 'import secrets; print(secrets.token_hex(32))'."
            )
        return
    if production:
        raise RuntimeError(
            f"{key} is not set. In production set it in the environment or in instance/config.py."
        )
    path = Path(instance_path) / f"{key.lower()}.txt"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
    config[key] = path.read_text().strip()
