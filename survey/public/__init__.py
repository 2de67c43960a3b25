"""The customer survey at /s/<token>."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("public", __name__)

from . import views  # noqa: E402,F401  (registers the routes on bp)
