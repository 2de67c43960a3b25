#!/usr/bin/env python3
"""Check installed distributions against a snapshot of the PyPA advisory database, offline.

The snapshot (.ci/advisories.json) holds, for every package we install, the advisories that
pypa/advisory-database had for it on the day it was read, in OSV form. This script needs no
network: it is the fallback of `make audit` when no vulnerability service can be reached, and the
test suite runs it on the pinned environment.

Exit status: 0 no known vulnerability; 1 at least one installed version is affected; 2 the check
is incomplete (an installed package is absent from the snapshot and not allowed to be, a version
cannot be read, or the snapshot or freeze file cannot be used).

Only the standard library and `packaging` are used, so the script runs in any virtualenv of the
project.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

DEFAULT_SNAPSHOT = Path(__file__).with_name("advisories.json")

#: Installers that a virtualenv brings along; requirements files never pin them.
INSTALLER_TOOLS = frozenset({"pip", "setuptools", "wheel", "distribute"})

#: Probe URL of each vulnerability service pip-audit knows, for one pinned name and version.
SERVICE_PROBES = {
    "pypi": "https://pypi.org/pypi/{name}/{version}/json",
    "osv": "https://api.osv.dev/v1/query",
}


class SnapshotError(Exception):
    """The snapshot or the list of installed distributions cannot be used."""


@dataclass(frozen=True)
class Finding:
    """One installed distribution affected by one advisory."""

    package: str
    installed: str
    advisory: str
    aliases: tuple[str, ...]
    fixed: str | None

    def line(self) -> str:
        """The report line: id, installed version, fixed version."""
        alias = f" ({', '.join(self.aliases)})" if self.aliases else ""
        fix = f"fixed in {self.fixed}" if self.fixed else "no fixed version"
        return f"{self.package} {self.installed}: {self.advisory}{alias}, {fix}"


@dataclass(frozen=True)
class Report:
    """What a check found."""

    findings: tuple[Finding, ...]
    unchecked: tuple[str, ...]
    unreadable: tuple[str, ...]
    checked: int
    advisories: int
    withdrawn: int

    @property
    def status(self) -> int:
        """The exit status the report calls for."""
        if self.findings:
            return 1
        if self.unchecked or self.unreadable:
            return 2
        return 0


def parse_version(text: str) -> Version | None:
    """A PEP 440 version, or None when the string is not one."""
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


def _event_key(event: Mapping[str, str]) -> tuple[int, Version]:
    """Sort key of an OSV event: '0' before every version, then PEP 440 order."""
    (kind, value), = event.items()
    if kind == "introduced" and value == "0":
        return (0, Version("0"))
    version = parse_version(value)
    if version is None:
        raise SnapshotError(f"event {kind}={value!r} is not a PEP 440 version")
    return (1, version)


def in_range(version: Version, events: Sequence[Mapping[str, str]]) -> bool:
    """Whether a version falls in one OSV ECOSYSTEM range (introduced/fixed/last_affected)."""
    affected = False
    for event in sorted(events, key=_event_key):
        (kind, value), = event.items()
        bound = _event_key(event)[1]
        if kind == "introduced":
            if value == "0" or version >= bound:
                affected = True
        elif kind == "fixed":
            if version >= bound:
                affected = False
        elif kind == "last_affected":
            if version > bound:
                affected = False
        elif kind == "limit":
            continue
        else:
            raise SnapshotError(f"unknown OSV event {kind!r}")
    return affected


def first_fix_after(version: Version, events: Sequence[Mapping[str, str]]) -> str | None:
    """The lowest 'fixed' version above an affected version, as written in the record."""
    fixes = [e["fixed"] for e in events if "fixed" in e]
    later = [f for f in fixes if (v := parse_version(f)) is not None and v > version]
    return min(later, key=Version) if later else None


def _same_version(version: Version, listed: str) -> bool:
    """Whether a listed version string names the installed version (PEP 440 equality)."""
    parsed = parse_version(listed)
    return parsed is not None and parsed == version


def affected_entries(advisory: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The advisory's affected entries as {package, ranges:[{events}], versions}.

    Records in the legacy schema ('affects' with bare 'introduced'/'fixed' keys per range) are
    turned into events; a missing 'introduced' means every version before 'fixed'.
    """
    if "affected" in advisory:
        return [
            {
                "package": entry["package"],
                "ranges": [r for r in entry.get("ranges", []) if r.get("type") == "ECOSYSTEM"],
                "versions": entry.get("versions", []),
            }
            for entry in advisory["affected"]
        ]
    legacy = advisory.get("affects")
    if legacy is None:
        raise SnapshotError(f"{advisory.get('id', '?')} has neither 'affected' nor 'affects'")
    ranges = []
    for r in legacy.get("ranges", []):
        if r.get("type") != "ECOSYSTEM":
            continue
        events: list[dict[str, str]] = [{"introduced": r.get("introduced", "0")}]
        if "fixed" in r:
            events.append({"fixed": r["fixed"]})
        ranges.append({"type": "ECOSYSTEM", "events": events})
    return [{"package": legacy["package"], "ranges": ranges, "versions": legacy.get("versions", [])}]


def match(advisory: Mapping[str, Any], package: str, version: Version) -> tuple[bool, str | None]:
    """Whether an advisory affects package==version, and the version that fixes it."""
    name = canonicalize_name(package)
    for entry in affected_entries(advisory):
        if canonicalize_name(entry["package"]) != name:
            continue
        for r in entry["ranges"]:
            if in_range(version, r["events"]):
                return True, first_fix_after(version, r["events"])
        if any(_same_version(version, listed) for listed in entry["versions"]):
            fixes = [f for r in entry["ranges"] for f in [first_fix_after(version, r["events"])] if f]
            return True, min(fixes, key=Version) if fixes else None
    return False, None


def load_snapshot(path: Path) -> dict[str, Any]:
    """Read the snapshot file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SnapshotError(f"cannot read the snapshot {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"the snapshot {path} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("packages"), dict):
        raise SnapshotError(f"the snapshot {path} has no 'packages' object")
    return data


def installed_distributions() -> dict[str, str]:
    """Name and version of every distribution of the running interpreter."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[canonicalize_name(name)] = dist.version
    return found


def read_freeze(path: Path) -> dict[str, str]:
    """Name and version of every 'name==version' line of a pip freeze or requirements file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc.strerror}") from exc
    found: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name, sep, version = line.partition("==")
        if not sep or not name.strip() or not version.strip():
            raise SnapshotError(f"{path}:{number}: expected 'name==version', found {raw.strip()!r}")
        name = name.split("[", 1)[0].strip()
        found[canonicalize_name(name)] = version.split(";", 1)[0].strip()
    return found


def read_requirements(path: Path, seen: set[Path] | None = None) -> list[Requirement]:
    """The requirements of a requirements file, following '-r' includes."""
    seen = set() if seen is None else seen
    path = path.resolve()
    if path in seen:
        return []
    seen.add(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc.strerror}") from exc
    found: list[Requirement] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            found += read_requirements(path.parent / line.split(None, 1)[1], seen)
            continue
        if line.startswith("-"):
            continue
        try:
            found.append(Requirement(line))
        except InvalidRequirement as exc:
            raise SnapshotError(f"{path}:{number}: {exc}") from exc
    return found


def requirement_closure(requirements: Iterable[Requirement]) -> dict[str, str]:
    """Installed name and version of the requirements and everything they pull in.

    This is the set `pip install -r` brings: each requirement's dependencies are read from the
    installed metadata, with environment markers and requested extras evaluated.
    """
    environment = default_environment()
    found: dict[str, str] = {}
    extras_seen: dict[str, set[str]] = {}
    stack = [(r.name, set(r.extras)) for r in requirements
             if r.marker is None or r.marker.evaluate({**environment, "extra": ""})]
    while stack:
        name, extras = stack.pop()
        key = canonicalize_name(name)
        if key in extras_seen and extras <= extras_seen[key]:
            continue
        extras_seen.setdefault(key, set()).update(extras)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise SnapshotError(f"{name} is required but not installed; run `make install`") from exc
        found[key] = dist.version
        for text in dist.requires or []:
            dep = Requirement(text)
            wanted = {""} | extras
            if dep.marker is None or any(dep.marker.evaluate({**environment, "extra": e}) for e in wanted):
                stack.append((dep.name, set(dep.extras)))
    return found


def read_allow_list(path: Path) -> set[str]:
    """Package names, one a line ('#' starts a comment), allowed to be absent from the snapshot."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SnapshotError(f"cannot read the allow-list {path}: {exc.strerror}") from exc
    return {canonicalize_name(w) for line in lines for w in line.split("#", 1)[0].split()}


def check(
    snapshot: Mapping[str, Any],
    installed: Mapping[str, str],
    allow_unchecked: Iterable[str] = (),
) -> Report:
    """Match installed distributions against the snapshot's advisories."""
    packages: Mapping[str, Any] = snapshot["packages"]
    covered = {canonicalize_name(name) for name in packages}
    allowed = {canonicalize_name(name) for name in allow_unchecked}
    advisories = [a for entry in packages.values() for a in entry.get("advisories", [])]
    live = [a for a in advisories if not a.get("withdrawn")]

    findings: list[Finding] = []
    unchecked: list[str] = []
    unreadable: list[str] = []
    checked = 0
    for name, text in sorted(installed.items()):
        if name not in covered:
            if name not in allowed:
                unchecked.append(f"{name}=={text}")
            continue
        version = parse_version(text)
        if version is None:
            unreadable.append(f"{name}=={text}")
            continue
        checked += 1
        for advisory in live:
            hit, fixed = match(advisory, name, version)
            if hit:
                findings.append(
                    Finding(name, text, advisory["id"], tuple(advisory.get("aliases", [])), fixed)
                )
    return Report(
        findings=tuple(findings),
        unchecked=tuple(unchecked),
        unreadable=tuple(unreadable),
        checked=checked,
        advisories=len(live),
        withdrawn=len(advisories) - len(live),
    )


def service_reachable(service: str, name: str, version: str, timeout: float = 5.0) -> bool:
    """Whether the vulnerability service pip-audit would use answers for one of our pins."""
    if service == "pypi":
        request = urllib.request.Request(SERVICE_PROBES["pypi"].format(name=name, version=version))
    elif service == "osv":
        body = json.dumps({"package": {"name": name, "ecosystem": "PyPI"}, "version": version})
        request = urllib.request.Request(
            SERVICE_PROBES["osv"], data=body.encode(), headers={"Content-Type": "application/json"}
        )
    else:
        return False
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (fixed https URL)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Check installed packages against the offline advisory snapshot "
        "(pypa/advisory-database).",
    )
    parser.add_argument("--snapshot", type=Path, default=DEFAULT_SNAPSHOT, help="snapshot JSON file")
    parser.add_argument(
        "--freeze", type=Path, help="check a 'pip freeze' file instead of the running interpreter"
    )
    parser.add_argument(
        "-r", "--requirements", action="append", type=Path, default=[], metavar="FILE",
        help="check the installed closure of these requirements (repeatable); other installed "
        "packages are still reported, without failing the check",
    )
    parser.add_argument(
        "--allow-unchecked", action="append", default=[], metavar="NAME",
        help="a package that may be absent from the snapshot (repeatable)",
    )
    parser.add_argument(
        "--allow-unchecked-from", type=Path, metavar="FILE",
        help="file of package names that may be absent from the snapshot, one a line",
    )
    parser.add_argument(
        "--probe", metavar="SERVICE", choices=sorted(SERVICE_PROBES),
        help="only say (exit 0/1) whether pip-audit's vulnerability service SERVICE answers for the "
        "first pinned requirement of the -r files",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check from the command line."""
    args = _parser().parse_args(argv)
    if args.probe:
        try:
            pins = [(r.name, s.version) for f in args.requirements for r in read_requirements(f)
                    for s in r.specifier if s.operator == "=="]
        except SnapshotError as exc:
            print(f"audit: {exc}", file=sys.stderr)
            return 2
        if not pins:
            print("audit: --probe needs a requirements file with a pinned requirement (-r FILE)",
                  file=sys.stderr)
            return 2
        return 0 if service_reachable(args.probe, *pins[0]) else 1
    try:
        snapshot = load_snapshot(args.snapshot)
        installed = read_freeze(args.freeze) if args.freeze else installed_distributions()
        pinned = installed
        if args.requirements and not args.freeze:
            requirements = [r for f in args.requirements for r in read_requirements(f)]
            pinned = requirement_closure(requirements)
            for req in requirements:
                pins = [s.version for s in req.specifier if s.operator == "=="]
                have = pinned.get(canonicalize_name(req.name))
                if pins and have is not None and parse_version(pins[0]) != parse_version(have):
                    raise SnapshotError(
                        f"{req.name} is pinned to {pins[0]} but {have} is installed; run `make install`"
                    )
        allowed = set(args.allow_unchecked)
        if args.allow_unchecked_from:
            allowed |= read_allow_list(args.allow_unchecked_from)
        if not args.freeze:
            allowed |= INSTALLER_TOOLS - {canonicalize_name(n) for n in snapshot["packages"]}
        report = check(snapshot, pinned, allowed)
        others = {n: v for n, v in installed.items() if n not in pinned}
        extra = check(snapshot, others, set(others)) if others else None
    except SnapshotError as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return 2

    date = snapshot.get("read_on", "an unknown date")
    print(
        f"OFFLINE CHECK against the advisory snapshot of {date} (pypa/advisory-database, CC-BY-4.0); "
        f"advisories published since then are not known to it."
    )
    print(
        f"{report.checked} installed packages checked against {report.advisories} advisories "
        f"({report.withdrawn} withdrawn ones ignored)."
    )
    for finding in report.findings:
        print(f"VULNERABLE {finding.line()}")
    if extra is not None:
        print(
            f"{len(others)} further installed packages are outside the requirements "
            f"({', '.join(sorted(others))}); they do not decide the result."
        )
        for finding in extra.findings:
            print(f"NOTE, not in the requirements: {finding.line()}")
    for item in report.unreadable:
        print(f"UNCHECKED {item}: the version is not PEP 440, so ranges cannot be compared")
    if report.unchecked:
        print(
            "UNCHECKED: installed but absent from the snapshot (add their advisories to "
            f"{args.snapshot.name}, or allow them with --allow-unchecked): " + ", ".join(report.unchecked)
        )
    if report.status == 0:
        print("No known vulnerability.")
    return report.status


if __name__ == "__main__":
    sys.exit(main())
