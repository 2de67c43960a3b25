"""`flask invitations CODE --unit U --count N --out FILE.csv [--qr DIR] [--qr-pdf FILE.pdf]`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import AuditEvent, CampaignStatus, CustomerGroup, Invitation
from survey.services import invitation_files, qr
from survey.services.invitations import find_invitation


def invitation_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Invitation))


def read_csv(path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_csv_of_working_links(runner, make_campaign, tmp_path):
    campaign = make_campaign(code="2017", units=2)
    out = tmp_path / "bac-giang.csv"
    result = runner.invoke(args=["invitations", "2017", "--unit", "bac-giang", "--count", "5", "--out", str(out),
                                 "--group", "business", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "Issued 5 links for bac-giang (business) in campaign 2017" in result.output
    rows = read_csv(out)
    assert list(rows[0]) == ["token", "link", "unit_code", "customer_group", "expires_at"]
    assert len(rows) == 5 == invitation_count()
    assert len({row["token"] for row in rows}) == 5
    for row in rows:
        assert row["link"] == f"http://survey.test/s/{row['token']}"
        assert (row["unit_code"], row["customer_group"]) == ("bac-giang", "business")
        invitation = find_invitation(row["token"])
        assert invitation.campaign_id == campaign.id
        assert invitation.customer_group == CustomerGroup.BUSINESS
        expires = dt.datetime.fromisoformat(row["expires_at"])
        assert expires == invitation.expires_at.replace(microsecond=0)
        assert dt.timedelta(days=29, hours=23) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=30)
    # Only hashes are stored: the database alone does not give the links away.
    stored = set(db.session.scalars(sa.select(Invitation.token_hash)))
    assert not stored & {row["token"] for row in rows}
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.entity == "invitation"))
    assert (event.action, event.after["unit"], event.after["count"]) == ("issue", "bac-giang", 5)
    assert leftovers(tmp_path) == ["bac-giang.csv"]


def test_svg_folder_has_one_code_per_link(runner, make_campaign, tmp_path):
    make_campaign(code="2017", units=1)
    out, folder = tmp_path / "links.csv", tmp_path / "qr"
    result = runner.invoke(args=["invitations", "2017", "--unit", "bac-giang", "--count", "3", "--out", str(out),
                                 "--qr", str(folder)])
    assert result.exit_code == 0, result.output
    rows = read_csv(out)
    assert leftovers(folder) == ["bac-giang-00001.svg", "bac-giang-00002.svg", "bac-giang-00003.svg"]
    for number, row in enumerate(rows, start=1):
        svg = (folder / f"bac-giang-{number:05d}.svg").read_text()
        assert svg.startswith("<?xml") and "<svg" in svg
        expected = tmp_path / "expected.svg"
        qr.write_svg(row["link"], expected)
        assert svg == expected.read_text()  # the code of this row's link, not another's
    assert leftovers(tmp_path) == ["expected.svg", "links.csv", "qr"]


def test_svgs_join_an_existing_folder(runner, make_campaign, tmp_path):
    make_campaign(code="2017", units=1)
    folder = tmp_path / "qr"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    result = runner.invoke(args=["invitations", "2017", "--unit", "bac-giang", "--count", "2",
                                 "--out", str(tmp_path / "l.csv"), "--qr", str(folder)])
    assert result.exit_code == 0, result.output
    assert leftovers(folder) == ["bac-giang-00001.svg", "bac-giang-00002.svg", "keep.txt"]


def test_printable_pdf_decodes_back_to_the_links(runner, make_campaign, tmp_path):
    pypdf = pytest.importorskip("pypdf", reason="pypdf is needed to read the PDF back")
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp is needed to decode the QR codes")
    make_campaign(code="2017", units=1)
    out, pdf_path = tmp_path / "links.csv", tmp_path / "links.pdf"
    count = qr.PER_PAGE + 3
    result = runner.invoke(args=["invitations", "2017", "--unit", "bac-giang", "--count", str(count),
                                 "--out", str(out), "--qr-pdf", str(pdf_path)])
    assert result.exit_code == 0, result.output
    assert f"QR codes (PDF, {math.ceil(count / qr.PER_PAGE)} A4 pages)" in result.output
    links = [row["link"] for row in read_csv(out)]
    reader = pypdf.PdfReader(io.BytesIO(pdf_path.read_bytes()))
    assert len(reader.pages) == 2
    width, height = reader.pages[0].mediabox.width, reader.pages[0].mediabox.height
    assert (round(width / 72 * 25.4), round(height / 72 * 25.4)) == (210, 297)  # A4
    decoded = []
    for page in reader.pages:
        for image in page.images:
            [barcode] = zxingcpp.read_barcodes(image.image)
            decoded.append(barcode.text)
    assert decoded == links
    text = reader.pages[0].extract_text()
    assert "Quét mã QR để trả lời khảo sát" in text
    assert "Công ty Điện lực Bắc Giang" in text
    assert "Số 00001" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--unit", "bac-giang", "--count", "1"], "there is no campaign nope"),
        (["2017", "--unit", "ha-noi", "--count", "1"], "there is no unit ha-noi"),
        (["2017", "--unit", "bac-giang", "--count", "0"], "count 0 is not allowed"),
        (["2017", "--unit", "bac-giang", "--count", "100001"], "count 100001 is not allowed"),
        (["2017", "--unit", "bac-giang", "--count", "2", "--days", "0"], "days 0 is not allowed"),
        (["2017", "--unit", "bac-giang", "--count", "10001", "--qr-pdf", "{tmp}/x.pdf"], "a PDF holds at most"),
        (["2017", "--unit", "bac-giang", "--count", "2", "--out", "{tmp}/missing/l.csv"], "does not exist"),
        (["2017", "--unit", "bac-giang", "--count", "2", "--out", "{tmp}"], "is a folder"),
        (["2017", "--unit", "bac-giang", "--count", "2", "--qr", "{tmp}/file.txt"], "not a folder"),
        (["2017", "--unit", "bac-giang", "--count", "2", "--qr-pdf", "{tmp}/file.txt/x.pdf"], "does not exist"),
        (["2017", "--unit", "bac-giang", "--count", "2", "--qr-pdf", "{tmp}/links.csv"], "different places"),
    ],
)
def test_bad_requests_issue_nothing(runner, make_campaign, tmp_path, args, message):
    make_campaign(code="2017", units=1)
    (tmp_path / "file.txt").write_text("not a folder")
    if "--out" not in args:
        args = [*args, "--out", "{tmp}/links.csv"]
    result = runner.invoke(args=["invitations", *(a.replace("{tmp}", str(tmp_path)) for a in args)])
    assert result.exit_code == 1
    assert message in result.stderr
    assert "\n" not in result.stderr.strip()
    assert invitation_count() == 0
    assert leftovers(tmp_path) == ["file.txt"]


def test_closed_campaign_issues_nothing(runner, make_campaign, tmp_path):
    make_campaign(code="2016", units=1, status=CampaignStatus.CLOSED)
    result = runner.invoke(args=["invitations", "2016", "--unit", "bac-giang", "--count", "2",
                                 "--out", str(tmp_path / "l.csv")])
    assert result.exit_code == 1
    assert "campaign 2016 is closed" in result.stderr
    assert invitation_count() == 0


def test_a_file_that_cannot_be_written_stores_nothing(runner, make_campaign, tmp_path, monkeypatch):
    make_campaign(code="2017", units=1)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "links.pdf"))

    monkeypatch.setattr(qr, "write_pdf", disk_full)
    result = runner.invoke(args=["invitations", "2017", "--unit", "bac-giang", "--count", "3",
                                 "--out", str(tmp_path / "links.csv"), "--qr", str(tmp_path / "qr"),
                                 "--qr-pdf", str(tmp_path / "links.pdf")])
    assert result.exit_code == 1
    assert "No space left on device" in result.stderr and "no link was issued" in result.stderr
    db.session.remove()
    assert invitation_count() == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 0
    assert leftovers(tmp_path) == []  # neither the files nor their temporary copies


def test_a_database_failure_leaves_no_file(runner, make_campaign, tmp_path, monkeypatch):
    make_campaign(code="2017", units=1)

    def refuse() -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(db.session, "commit", refuse)
    result = runner.invoke(args=["invitations", "2017", "--unit", "bac-giang", "--count", "2",
                                 "--out", str(tmp_path / "links.csv"), "--qr", str(tmp_path / "qr")])
    assert result.exit_code != 0
    monkeypatch.undo()
    db.session.remove()
    assert invitation_count() == 0
    assert leftovers(tmp_path) == []


def test_many_links_show_progress_and_stay_consistent(runner, make_campaign, tmp_path, monkeypatch):
    from survey.commands import invitations as command

    monkeypatch.setattr(command, "PROGRESS_FROM", 10)
    make_campaign(code="2017", units=1)
    result = runner.invoke(args=["invitations", "2017", "--unit", "bac-giang", "--count", "40",
                                 "--out", str(tmp_path / "links.csv"), "--qr", str(tmp_path / "qr")])
    assert result.exit_code == 0, result.output
    assert "Drawing QR codes" in result.stderr
    assert len(read_csv(tmp_path / "links.csv")) == 40 == len(leftovers(tmp_path / "qr")) == invitation_count()
    assert invitation_files.MAX_COUNT == 100_000


def test_no_token_starts_like_a_spreadsheet_formula(runner, make_campaign, tmp_path, monkeypatch):
    """Excel reads a cell starting with '-' as a formula: such tokens are replaced before the file is written."""
    import secrets

    make_campaign(code="2017", units=1)
    drawn = iter(["-starts-like-a-formula", "=also-bad", "fine-token-1", "-again", "fine-token-2", "fine-token-3"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: next(drawn))
    out = tmp_path / "links.csv"
    result = runner.invoke(args=["invitations", "2017", "--unit", "bac-giang", "--count", "3", "--out", str(out)])
    monkeypatch.undo()
    assert result.exit_code == 0, result.output
    tokens = [row["token"] for row in read_csv(out)]
    assert sorted(tokens) == ["fine-token-1", "fine-token-2", "fine-token-3"]
    for token in tokens:
        assert find_invitation(token).unit.code == "bac-giang"
    assert invitation_count() == 3
