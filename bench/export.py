"""The raw-responses export streamed over HTTP by gunicorn: seconds, and the serving worker's peak memory."""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import datasets
from .client import USER_AGENT, Browser
from .servers import start_gunicorn

#: Bytes read per call while downloading; the client keeps no more than this.
READ_SIZE = 1 << 20


@dataclass(frozen=True)
class ExportResult:
    seconds: float
    lines: int
    bytes: int
    status: int
    worker_baseline_mib: float
    worker_peak_mib: float
    #: Why the download ended early (the connection closed mid-stream), or "" when it completed.
    cut_off: str = ""


async def login(port: int) -> Browser:
    """Sign in as the benchmark's HQ account, through the login form (CSRF included)."""
    browser = Browser("127.0.0.1", port)
    page = await browser.get("/login")
    reply = await browser.post_form("/login", {"csrf_token": page.csrf_token(), "email": datasets.HQ_EMAIL,
                                               "password": datasets.HQ_PASSWORD})
    if reply.status != 302:
        raise RuntimeError(f"login answered {reply.status}")
    return browser


def download(port: int, path: str, cookies: dict[str, str],
             timeout: float = 900.0) -> tuple[int, int, int, float, str]:
    """GET ``path`` and read the body as it streams; return (status, lines, bytes, seconds, why it was cut off)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    # The same User-Agent as at login: Flask-Login's strong session protection ends a session whose browser changes.
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()), "User-Agent": USER_AGENT}
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    lines = size = 0
    cut_off = ""
    try:
        while chunk := response.read(READ_SIZE):
            lines += chunk.count(b"\n")
            size += len(chunk)
    except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
        # A worker killed mid-stream (gunicorn's timeout) ends the chunked body early.
        partial = getattr(exc, "partial", b"")
        lines += partial.count(b"\n")
        size += len(partial)
        cut_off = type(exc).__name__
    finally:
        connection.close()
    return response.status, lines, size, time.perf_counter() - started, cut_off


def run(url: str, logs: Path, name: str, workers: int = 2) -> ExportResult:
    """Start gunicorn on ``url``, sign in, download the campaign's responses.csv, read the workers' VmHWM."""
    with start_gunicorn("wsgi:app", datasets.app_environment(url), logs / f"export-{name}.log",
                        workers=workers) as server:
        for _ in range(4 * workers):  # every worker loads the app before the baseline is read
            asyncio.run(Browser("127.0.0.1", server.port).get("/login"))
        browser = asyncio.run(login(server.port))
        baseline = max(server.peak_memory_mib().values(), default=0.0)
        peaks: dict[int, float] = {}

        def watch() -> None:
            # Read the workers' peaks while they live: gunicorn replaces a worker it kills on timeout.
            while not done.is_set():
                for pid, value in server.peak_memory_mib().items():
                    peaks[pid] = max(value, peaks.get(pid, 0.0))
                done.wait(0.5)

        done = threading.Event()
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            status, lines, size, seconds, cut_off = download(
                server.port, f"/hq/campaigns/{datasets.CAMPAIGN}/responses.csv", browser.cookies)
        finally:
            done.set()
            watcher.join()
        for pid, value in server.peak_memory_mib().items():
            peaks[pid] = max(value, peaks.get(pid, 0.0))
        if "WORKER TIMEOUT" in server.log_tail(200):
            cut_off = (cut_off + "; " if cut_off else "") + "gunicorn killed the worker at GUNICORN_TIMEOUT"
    return ExportResult(seconds, lines, size, status, baseline, max(peaks.values(), default=0.0), cut_off)
