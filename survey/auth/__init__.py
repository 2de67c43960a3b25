"""Staff sign-in: /login and /logout."""

from __future__ import annotations

from flask import Blueprint

from ..extensions import db, login_manager
from ..models import User

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Flask-Login: the signed-in user, if the account still exists and is active."""
    if not user_id.isdigit():
        return None
    return db.session.get(User, int(user_id))
