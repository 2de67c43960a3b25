"""A small HTTP/1.1 client on asyncio streams, enough to play many customers at once on one core.

Only loopback addresses are accepted: the benchmarks load servers they started themselves.
Each request opens its own connection (gunicorn's sync workers close it after every reply),
keeps cookies per customer like a browser, and is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

#: No request of a benchmark may take longer than this; a slower one counts as an error.
REQUEST_TIMEOUT = 30.0
USER_AGENT = "survey-bench"
CSRF_PATTERN = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_token_in(page: bytes, status: int) -> str:
    """The CSRF token of the form in a page's HTML."""
    match = CSRF_PATTERN.search(page)
    if match is None:
        raise ValueError(f"no CSRF token in the page (status {status})")
    return (match.group(1) or match.group(2)).decode("ascii")


STATE_PATTERN = re.compile(rb'name="link_state" value="([^"]+)"')


def survey_fields_in(page: bytes, status: int) -> dict[str, str]:
    """The hidden fields a survey page's form posts back, as a browser does: the CSRF token and,
    where the page carries it (PostgreSQL), the link's state."""
    fields = {"csrf_token": csrf_token_in(page, status)}
    state = STATE_PATTERN.search(page)
    if state is not None:
        fields["link_state"] = state.group(1).decode("ascii")
    return fields


class LoopbackOnly(ValueError):
    """The benchmarks never send traffic anywhere but this machine."""


def check_loopback(host: str) -> None:
    """Refuse any address outside 127.0.0.0/8 and ::1."""
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise LoopbackOnly(f"{host} is not a loopback address") from None
    if not address.is_loopback:
        raise LoopbackOnly(f"{host} is not a loopback address")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    cookies: dict[str, str]
    body: bytes
    seconds: float

    @property
    def location(self) -> str:
        return self.headers.get("location", "")

    def csrf_token(self) -> str:
        """The CSRF token of the form on this page."""
        return csrf_token_in(self.body, self.status)

    def survey_fields(self) -> dict[str, str]:
        """The hidden fields of the survey page's form (`survey_fields_in`)."""
        return survey_fields_in(self.body, self.status)


@dataclass
class Browser:
    """One simulated person: a host, a port and a cookie jar."""

    host: str
    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_loopback(self.host)

    async def get(self, path: str) -> Reply:
        return await self.request("GET", path)

    async def post_form(self, path: str, data: Mapping[str, str]) -> Reply:
        body = urlencode(data).encode("ascii")
        return await self.request("POST", path, body, "application/x-www-form-urlencoded")

    async def request(self, method: str, path: str, body: bytes = b"", content_type: str | None = None) -> Reply:
        """Send one request on a new connection; raises asyncio.TimeoutError past REQUEST_TIMEOUT."""
        started = time.perf_counter()
        reply = await asyncio.wait_for(self._exchange(method, path, body, content_type), REQUEST_TIMEOUT)
        reply.seconds = time.perf_counter() - started
        self.cookies.update(reply.cookies)
        return reply

    async def _exchange(self, method: str, path: str, body: bytes, content_type: str | None) -> Reply:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: close",
                     f"User-Agent: {USER_AGENT}", "Accept-Language: vi"]
            if self.cookies:
                lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
            if body or method == "POST":
                lines.append(f"Content-Length: {len(body)}")
            if content_type:
                lines.append(f"Content-Type: {content_type}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            return await read_reply(reader)
        finally:
            writer.close()


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    """Read a status line, headers, and a body by Content-Length, chunks, or until the connection closes."""
    status_line = await reader.readline()
    parts = status_line.split(None, 2)
    if len(parts) < 2:
        raise ConnectionError(f"bad status line {status_line[:80]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "set-cookie":
            pair = value.split(";", 1)[0]
            key, _, cookie = pair.partition("=")
            cookies[key.strip()] = cookie.strip()
        else:
            headers[name] = value
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        pieces = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readline()
                break
            pieces.append(await reader.readexactly(size))
            await reader.readline()
        body = b"".join(pieces)
    else:
        body = await reader.read()
    return Reply(status, headers, cookies, body, 0.0)
