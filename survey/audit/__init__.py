"""The auditor workspace at /audit/: assignments, interview entry (also offline), paper CSV upload, submit."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("audit", __name__, url_prefix="/audit")

from . import views  # noqa: E402,F401  (registers the routes on bp)
