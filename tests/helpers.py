"""Small helpers every test area uses: a form's CSRF token, signing in through the real form."""

from __future__ import annotations

import re
from typing import Any

#: The password the factories give every account.
PASSWORD = "correct horse 42"


def csrf_from(html: str) -> str:
    """The CSRF token of a rendered form, or of the page's meta tag (as a browser would submit it)."""
    match = (
        re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
        or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', html)
        or re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


def post_login(client: Any, email: str, password: str = PASSWORD) -> Any:
    """Post the login form with its CSRF token; the answer is the caller's to check."""
    page = client.get("/login")
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_from(page.get_data(as_text=True))}
    )


def login(client: Any, email: str, password: str = PASSWORD) -> Any:
    """Sign in through the login form, as a browser does; fails the test unless it succeeds."""
    response = post_login(client, email, password)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response
