"""Staff sign-in: /login and /logout, with throttling against password guessing."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from ..extensions import db, limiter, login_manager
from ..models import User, utcnow
from ..services.users import password_matches

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message = _l("Please log in to see this page.")
login_manager.session_protection = "strong"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Flask-Login: the signed-in user, if the account still exists."""
    if not user_id.isdigit():
        return None
    return db.session.get(User, int(user_id))


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


def login_key() -> str:
    """Throttle by the account being tried, so guessing one password from many addresses is slowed too."""
    return "login:" + (request.form.get("email") or "").strip().lower()[:254]


def safe_next(target: str | None) -> str | None:
    """Only same-site paths are followed after login (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute; 100 per day", methods=["POST"])
@limiter.limit("10 per minute; 100 per day", key_func=login_key, methods=["POST"])
def login() -> Response | str | tuple[str, int]:
    """Sign in with e-mail and password."""
    if current_user.is_authenticated:
        return redirect(url_for("home"))
    form = LoginForm()
    if form.validate_on_submit():
        user = db.session.scalar(sa.select(User).where(User.email == form.email.data.strip().lower()))
        if user is not None and user.active and password_matches(user, form.password.data):
            login_user(user)
            user.last_login_at = utcnow()
            db.session.commit()
            return redirect(safe_next(request.args.get("next")) or url_for("home"))
        flash(_("E-mail or password is not right. Check them and try again."), "error")
        return render_template("auth/login.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """Sign out (POST with CSRF, so a link elsewhere cannot sign anyone out)."""
    logout_user()
    return redirect(url_for("auth.login"))
