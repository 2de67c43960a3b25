"""The customer survey at /s/<token>."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("public", __name__)
