"""Every access decision lives in survey/policy.py: no view or template looks at a user's role itself.

A role check elsewhere is how one page ends up with different rules from the others; the
route × role table (tests/crossscoring) tests the policy, this test keeps it the only one.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Packages and modules that serve requests.
VIEW_CODE = ("survey/web.py", "survey/auth", "survey/hq", "survey/audit", "survey/public", "survey/reports",
             "survey/unit", "survey/api")
ROLE_CHECK = re.compile(r"current_user\.role|\.role\s*(==|!=|\bin\b|\bnot in\b)|Role\.(HQ|AUDITOR|MANAGER)")
TEMPLATE_ROLE_CHECK = re.compile(r"current_user\.role|\.role\s*(==|!=|\bin\b)")


def _view_files() -> list[Path]:
    files: list[Path] = []
    for name in VIEW_CODE:
        path = ROOT / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def test_views_ask_the_policy_instead_of_checking_roles() -> None:
    files = _view_files()
    assert len(files) > 10
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1)
        if ROLE_CHECK.search(line)
    ]
    assert offenders == [], "ask survey.policy (can/authorize) instead:\n" + "\n".join(offenders)


def test_templates_ask_the_policy_instead_of_checking_roles() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / "templates").rglob("*.html"))
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1)
        if TEMPLATE_ROLE_CHECK.search(line)
    ]
    assert offenders == []


def test_every_view_module_asks_the_policy() -> None:
    """Each blueprint that serves staff pages imports the policy (the API has its own key check)."""
    for package in ("survey/hq", "survey/audit", "survey/reports", "survey/unit"):
        text = "\n".join(p.read_text("utf-8") for p in (ROOT / package).rglob("*.py"))
        assert "authorize(" in text, package
