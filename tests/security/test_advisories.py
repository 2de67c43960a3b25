"""Known vulnerabilities: the offline advisory check (.ci/audit_offline.py) and its snapshot.

The range evaluator is tried on hand-made OSV records whose answers are known, then on real
records of the snapshot, then on the pinned environment itself: this last test is what makes CI
report "no known vulnerability" without any network, and it fails as soon as a pinned version
falls in an advisory of the snapshot.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT_PATH = ROOT / ".ci" / "advisories.json"


def _load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_offline", ROOT / ".ci" / "audit_offline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit_offline"] = module
    spec.loader.exec_module(module)
    return module


audit = _load_checker()


@pytest.fixture(scope="module")
def snapshot() -> dict[str, Any]:
    """The committed snapshot."""
    data: dict[str, Any] = audit.load_snapshot(SNAPSHOT_PATH)
    return data


def osv(*events: dict[str, str], versions: list[str] | None = None, package: str = "demo") -> dict[str, Any]:
    """A one-range OSV record for the package 'demo'."""
    affected: dict[str, Any] = {"package": package, "ranges": [{"type": "ECOSYSTEM", "events": list(events)}]}
    if versions is not None:
        affected["versions"] = versions
    return {"id": "TEST-1", "aliases": ["CVE-0000-0001"], "affected": [affected]}


def affected(record: dict[str, Any], version: str, package: str = "demo") -> bool:
    hit, _ = audit.match(record, package, Version(version))
    return bool(hit)


# --- the range evaluator on hand-made records -------------------------------------------------------------------

INTRODUCED_0_FIXED = osv({"introduced": "0"}, {"fixed": "2.2.5"})
TWO_RANGES = osv({"introduced": "0"}, {"fixed": "2.2.5"}, {"introduced": "2.3.0"}, {"fixed": "2.3.2"})
# Events in the order urllib3's records give them: the later branch first.
UNSORTED = osv({"introduced": "2.0.0"}, {"fixed": "2.0.7"}, {"introduced": "0"}, {"fixed": "1.26.18"})
LAST_AFFECTED = osv({"introduced": "1.4"}, {"last_affected": "1.6.2"})
OPEN_ENDED = osv({"introduced": "3.0"})


@pytest.mark.parametrize(
    ("record", "version", "expected"),
    [
        (INTRODUCED_0_FIXED, "0.1", True),
        (INTRODUCED_0_FIXED, "2.2.4", True),
        (INTRODUCED_0_FIXED, "2.2.5", False),  # the fixed version itself is safe
        (INTRODUCED_0_FIXED, "3.1.3", False),
        (TWO_RANGES, "2.2.4", True),
        (TWO_RANGES, "2.2.5", False),  # between the two ranges
        (TWO_RANGES, "2.2.9", False),
        (TWO_RANGES, "2.3.0", True),
        (TWO_RANGES, "2.3.1", True),
        (TWO_RANGES, "2.3.2", False),
        (UNSORTED, "1.26.17", True),
        (UNSORTED, "1.26.18", False),
        (UNSORTED, "1.27.0", False),
        (UNSORTED, "2.0.6", True),
        (UNSORTED, "2.0.7", False),
        (LAST_AFFECTED, "1.3.9", False),
        (LAST_AFFECTED, "1.4", True),
        (LAST_AFFECTED, "1.6.2", True),  # last_affected is still affected
        (LAST_AFFECTED, "1.6.3", False),
        (OPEN_ENDED, "2.9", False),
        (OPEN_ENDED, "3.0", True),
        (OPEN_ENDED, "99.0", True),
    ],
)
def test_ranges(record: dict[str, Any], version: str, expected: bool) -> None:
    assert affected(record, version) is expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2.3.2rc1", True),  # a pre-release of the fix comes before the fix
        ("2.3.2a1", True),
        ("2.3.2.dev0", True),
        ("2.3.2", False),
        ("2.3.2.post1", False),  # a post-release of the fix comes after it
        ("2.3.0rc1", False),  # a pre-release before the range opens is outside
    ],
)
def test_pre_and_post_releases(version: str, expected: bool) -> None:
    assert affected(TWO_RANGES, version) is expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2.2.5.0", False),  # PEP 440: 2.2.5.0 == 2.2.5, the fix
        ("2.2.4.0", True),
        ("2.3.2RC1", True),  # spelling of a pre-release is normalised
        ("2.3.2-rc.1", True),
        ("v2.3.1", True),
    ],
)
def test_pep440_normalisation(version: str, expected: bool) -> None:
    assert affected(TWO_RANGES, version) is expected


def test_versions_list_without_ranges() -> None:
    record = {"id": "TEST-2", "affected": [{"package": "Demo_Pkg", "versions": ["1.0", "1.2.0rc1", "3.1.0.rc1"]}]}
    assert affected(record, "1.0.0", package="demo-pkg")  # names and versions compared normalised
    assert affected(record, "1.2.0c1", package="demo.pkg")
    assert affected(record, "3.1.0rc1", package="demo-pkg")
    assert not affected(record, "1.1", package="demo-pkg")
    assert not affected(record, "1.0", package="other")


def test_versions_list_adds_to_ranges() -> None:
    record = osv({"introduced": "2.0"}, {"fixed": "2.1"}, versions=["1.5"])
    assert affected(record, "1.5")
    assert affected(record, "2.0.3")
    assert not affected(record, "1.6")


def test_legacy_schema() -> None:
    """The first PYSEC records: 'affects' with bare 'introduced'/'fixed' keys."""
    record = {"id": "TEST-3", "affects": {"package": "demo", "ranges": [{"type": "ECOSYSTEM", "fixed": "8.2.0"}]}}
    assert affected(record, "1.0")
    assert affected(record, "8.1.2")
    assert not affected(record, "8.2.0")
    bounded = {"id": "TEST-4", "affects": {"package": "demo",
                                           "ranges": [{"type": "ECOSYSTEM", "introduced": "5.1", "fixed": "5.2b1"}]}}
    assert not affected(bounded, "5.0")
    assert affected(bounded, "5.1.2")
    assert not affected(bounded, "5.2")


def test_git_ranges_are_ignored() -> None:
    record = {"id": "TEST-5", "affected": [{"package": "demo", "ranges": [
        {"type": "GIT", "events": [{"introduced": "0"}, {"fixed": "0123abcd"}]}]}]}
    assert not affected(record, "1.0")


def test_fixed_version_reported() -> None:
    hit, fixed = audit.match(TWO_RANGES, "demo", Version("2.3.1"))
    assert hit and fixed == "2.3.2"
    hit, fixed = audit.match(TWO_RANGES, "demo", Version("1.0"))
    assert hit and fixed == "2.2.5"
    hit, fixed = audit.match(OPEN_ENDED, "demo", Version("4.0"))
    assert hit and fixed is None


def test_bad_event_is_refused() -> None:
    with pytest.raises(audit.SnapshotError):
        affected(osv({"introduced": "0"}, {"fixed": "not a version"}), "1.0")


# --- the checker on whole snapshots --------------------------------------------------------------------------------

def small_snapshot(*advisories: dict[str, Any]) -> dict[str, Any]:
    return {"read_on": "2000-01-01", "packages": {"demo": {"advisories": list(advisories)}}}


def test_check_reports_withdrawn_and_unchecked() -> None:
    withdrawn = {**osv({"introduced": "0"}), "id": "TEST-W", "withdrawn": "2023-06-06T10:37:00Z"}
    report = audit.check(small_snapshot(INTRODUCED_0_FIXED, withdrawn),
                         {"demo": "1.0", "newcomer": "0.1", "allowed-tool": "2.0"}, ["Allowed_Tool"])
    assert [f.advisory for f in report.findings] == ["TEST-1"]
    assert report.findings[0].fixed == "2.2.5"
    assert report.unchecked == ("newcomer==0.1",)
    assert report.withdrawn == 1
    assert report.status == 1


def test_check_statuses() -> None:
    clean = audit.check(small_snapshot(INTRODUCED_0_FIXED), {"demo": "3.0"})
    assert clean.status == 0 and clean.checked == 1
    absent = audit.check(small_snapshot(INTRODUCED_0_FIXED), {"demo": "3.0", "newcomer": "1"})
    assert absent.status == 2
    unreadable = audit.check(small_snapshot(INTRODUCED_0_FIXED), {"demo": "not-pep-440 !"})
    assert unreadable.status == 2 and unreadable.unreadable


def test_command_line_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(small_snapshot(INTRODUCED_0_FIXED)))
    freeze = tmp_path / "freeze.txt"

    freeze.write_text("# a comment\ndemo==2.2.4\n")
    assert audit.main(["--snapshot", str(snap), "--freeze", str(freeze)]) == 1
    out = capsys.readouterr().out
    assert "VULNERABLE demo 2.2.4: TEST-1 (CVE-0000-0001), fixed in 2.2.5" in out
    assert "snapshot of 2000-01-01" in out

    freeze.write_text("demo==2.2.5\n")
    assert audit.main(["--snapshot", str(snap), "--freeze", str(freeze)]) == 0
    assert "No known vulnerability." in capsys.readouterr().out

    freeze.write_text("demo==2.2.5\nnewcomer==1.0\n")
    assert audit.main(["--snapshot", str(snap), "--freeze", str(freeze)]) == 2
    assert "newcomer==1.0" in capsys.readouterr().out
    assert audit.main(["--snapshot", str(snap), "--freeze", str(freeze), "--allow-unchecked", "newcomer"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(
    ("snapshot_text", "freeze_text"),
    [
        ("{not json", "demo==1.0\n"),
        ('{"packages": []}', "demo==1.0\n"),
        ('{"packages": {}}', "demo>=1.0\n"),  # a freeze line must pin
    ],
)
def test_command_line_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                snapshot_text: str, freeze_text: str) -> None:
    snap = tmp_path / "snap.json"
    snap.write_text(snapshot_text)
    freeze = tmp_path / "freeze.txt"
    freeze.write_text(freeze_text)
    assert audit.main(["--snapshot", str(snap), "--freeze", str(freeze)]) == 2
    assert capsys.readouterr().err.startswith("audit: ")


def test_missing_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit.main(["--snapshot", str(tmp_path / "absent.json")]) == 2
    assert "cannot read the snapshot" in capsys.readouterr().err


# --- real records of the snapshot ---------------------------------------------------------------------------------

def test_snapshot_records_its_source(snapshot: dict[str, Any]) -> None:
    assert "pypa/advisory-database" in snapshot["source"]
    assert "CC-BY-4.0" in snapshot["license"]
    assert snapshot["read_on"]
    for name, entry in snapshot["packages"].items():
        assert name == canonicalize_name(name)
        assert len(entry["advisories"]) == 0 or entry["commits"]
        for advisory in entry["advisories"]:
            assert len(advisory["commit"]) == 40 and advisory["file"].startswith(f"vulns/{name}/")


def advisory(snapshot: dict[str, Any], package: str, advisory_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(a for a in snapshot["packages"][package]["advisories"] if a["id"] == advisory_id)
    return found


@pytest.mark.parametrize(
    ("package", "advisory_id", "vulnerable", "safe", "fixed"),
    [
        # Flask's session cookie caching issue (CVE-2023-30861), fixed in 2.2.5 and 2.3.2.
        ("flask", "PYSEC-2023-62", ["2.2.4", "2.3.1", "0.12"], ["2.2.5", "2.3.2", "3.1.3"], "2.2.5"),
        # Werkzeug's multipart DoS (CVE-2023-46136): its version list ends with 2.3.8, after 3.0.0.
        ("werkzeug", "PYSEC-2023-221", ["2.3.8", "3.0.0"], ["3.0.1", "3.1.9"], "3.0.1"),
        # redis-py, three branches fixed separately.
        ("redis", "PYSEC-2023-45", ["4.3.5", "4.4.2", "4.5.2"], ["4.3.6", "4.4.3", "4.5.3", "8.1.0"], "4.3.6"),
        # A legacy-schema record ('affects' with a bare 'fixed').
        ("pillow", "PYSEC-2021-92", ["8.1.2"], ["8.2.0", "13.0.0"], "8.2.0"),
        # urllib3: events not in version order.
        ("urllib3", "PYSEC-2023-212", ["1.26.17", "2.0.6"], ["1.26.18", "2.0.7", "2.8.0"], "1.26.18"),
    ],
)
def test_real_records(snapshot: dict[str, Any], package: str, advisory_id: str,
                      vulnerable: list[str], safe: list[str], fixed: str) -> None:
    record = advisory(snapshot, package, advisory_id)
    for version in vulnerable:
        assert audit.match(record, package, Version(version))[0], version
    for version in safe:
        assert not audit.match(record, package, Version(version))[0], version
    assert audit.match(record, package, Version(vulnerable[0]))[1] == fixed


def test_flask_224_is_flagged_and_ours_is_not(snapshot: dict[str, Any]) -> None:
    report = audit.check(snapshot, {"flask": "2.2.4"})
    assert report.status == 1
    assert "PYSEC-2023-62" in {f.advisory for f in report.findings}
    assert {f.fixed for f in report.findings if f.advisory == "PYSEC-2023-62"} == {"2.2.5"}
    ours = audit.read_requirements(ROOT / "requirements.txt")
    flask_pin = next(str(s.version) for r in ours if r.name.lower() == "flask" for s in r.specifier)
    assert audit.check(snapshot, {"flask": flask_pin}).status == 0


def test_withdrawn_record_is_ignored(snapshot: dict[str, Any]) -> None:
    """PYSEC-2023-73 (redis, every version, withdrawn) must not flag redis."""
    record = advisory(snapshot, "redis", "PYSEC-2023-73")
    assert record["withdrawn"]
    assert audit.match(record, "redis", Version("8.1.0"))[0]  # the ranges alone would flag it
    assert audit.check(snapshot, {"redis": "8.1.0"}).status == 0


# --- the pinned environment ---------------------------------------------------------------------------------------

def test_pinned_requirements_have_no_known_vulnerability(snapshot: dict[str, Any]) -> None:
    """Every version pinned in requirements*.txt, and all they install, is clear of the snapshot's advisories.

    This fails when a pin is affected (upgrade it) and when a package was added without its
    advisories being added to the snapshot (see docs/reliability.md, "Known vulnerabilities").
    """
    requirements = audit.read_requirements(ROOT / "requirements-dev.txt")
    pins = {canonicalize_name(r.name): str(s.version) for r in requirements for s in r.specifier if s.operator == "=="}
    assert "flask" in pins and "pytest" in pins  # both files were read
    installed = audit.requirement_closure(requirements)
    report = audit.check(snapshot, {**installed, **pins})
    assert report.findings == (), "\n".join(f.line() for f in report.findings)
    assert report.unchecked == (), f"add these packages to {SNAPSHOT_PATH.name}: {report.unchecked}"
    assert report.unreadable == ()
    assert report.checked >= len(pins)
