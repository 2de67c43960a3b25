"""Real gunicorn servers on free loopback ports, for the benchmarks and the two-instance tests.

Each server runs with the settings of deploy/gunicorn.conf.py (workers and address through
its environment variables) in its own process group, so stopping it ends the master and
every worker, and nothing is left behind when a benchmark or a test fails half-way.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"


class ServerError(RuntimeError):
    """A server that would not start; the message ends with the tail of its log."""


def gunicorn_path() -> Path:
    """The gunicorn beside the running Python (the project's .venv)."""
    return Path(sys.executable).parent / "gunicorn"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def children_of(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (gunicorn's workers), from /proc."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(part) for part in text.split()]


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far, or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_of(pids: Iterable[int]) -> dict[int, float]:
    """CPU time used so far by each of these processes that is still there."""
    return {pid: seconds for pid in pids if (seconds := process_cpu_seconds(pid)) is not None}


def _is_postgres(entry: Path) -> bool:
    try:
        return entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres"
    except OSError:  # the process ended meanwhile
        return False


def _database_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if _is_postgres(entry)]


def database_cpu_seconds() -> dict[int, float]:
    """CPU time used so far by each PostgreSQL process on this machine (its backends and background processes)."""
    return cpu_seconds_of(_database_pids())


def database_run_ns() -> dict[int, int]:
    """Nanoseconds on the CPU so far of each PostgreSQL process (/proc/<pid>/schedstat: finer than clock ticks)."""
    times = {}
    for pid in _database_pids():
        try:
            times[pid] = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except OSError:  # the process ended meanwhile
            continue
    return times


def database_seconds_since(before: Mapping[int, int]) -> float:
    """PostgreSQL's CPU seconds since `database_run_ns` returned ``before`` (a process started since counts whole)."""
    return sum(ns - before.get(pid, 0) for pid, ns in database_run_ns().items()) / 1e9


def status_kib(pid: int, field_name: str) -> int | None:
    """A memory figure of a process from /proc/<pid>/status (VmHWM = peak resident set), in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class Server:
    """A running gunicorn master on 127.0.0.1:port, with its log file."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    workers: int
    _log: object = field(repr=False, default=None)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """The worker processes now serving (they change when gunicorn recycles one)."""
        return children_of(self.process.pid)

    def peak_memory_mib(self) -> dict[int, float]:
        """Peak resident memory (VmHWM) of each current worker, in MiB."""
        peaks = {}
        for pid in self.worker_pids():
            value = status_kib(pid, "VmHWM")
            if value is not None:
                peaks[pid] = value / 1024
        return peaks

    def cpu_seconds(self) -> dict[int, float]:
        """CPU time (user + system) used so far by each current worker."""
        return cpu_seconds_of(self.worker_pids())

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the master and its workers: TERM, then KILL after 15 s. Safe to call twice."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        # The workers share the master's process group; make sure none outlives it.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.process.poll() is None:
            self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None

    def __enter__(self) -> Server:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _answers_http(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _booted_workers(log_path: Path) -> int:
    try:
        return log_path.read_text(errors="replace").count("Booting worker with pid")
    except OSError:
        return 0


def start_gunicorn(
    app_spec: str,
    env: Mapping[str, str],
    log_path: Path,
    *,
    workers: int = 2,
    probe_path: str = "/login",
    boot_timeout: float = 60.0,
    extra_args: tuple[str, ...] = (),
) -> Server:
    """Start ``gunicorn -c deploy/gunicorn.conf.py APP`` on a free port and wait until it answers HTTP.

    ``env`` is added to this process's environment (DATABASE_URL, SECRET_KEY, ...); the bind
    address and the worker count go through GUNICORN_BIND and GUNICORN_WORKERS, as on a host.
    """
    last_error = ""
    for _ in range(3):  # another process may take the free port before gunicorn binds it
        port = free_port()
        full_env = {**os.environ, **env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers)}
        log = log_path.open("wb")
        process = subprocess.Popen(
            [str(gunicorn_path()), "-c", str(GUNICORN_CONF), *extra_args, app_spec],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = Server(process, port, log_path, workers, log)
        deadline = time.monotonic() + boot_timeout
        try:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    break
                if _booted_workers(log_path) >= workers and _answers_http(port, probe_path):
                    return server
                time.sleep(0.2)
            last_error = server.log_tail()
        except BaseException:
            server.stop()
            raise
        server.stop()
        if "Address already in use" not in last_error:
            break
    raise ServerError(f"gunicorn {app_spec} did not start within {boot_timeout:.0f} s; its log ends:\n{last_error}")
