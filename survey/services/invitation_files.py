"""Issuing a unit's survey links as files to hand out: a CSV of links, QR codes as SVG files or an A4 PDF.

Either everything happens or nothing: the files are written to temporary names next to
their destinations, the invitations are committed only once every file is complete, and
the files take their final names only after the commit. A failure at any step removes the
temporary files and stores no invitation. The files hold live links, so like any temporary
file they are readable by their owner only (mode 0600, folders 0700).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..extensions import db
from ..models import Campaign, CampaignStatus, CustomerGroup, Unit, User
from . import audit, qr
from .invitations import TOKEN_BYTES, IssuedInvitation, hash_token, issue_invitations, survey_link

MAX_COUNT = 100_000
#: A PDF is built in memory; more cards than this belong in several files (or as SVGs).
MAX_PDF_CARDS = 10_000
MAX_DAYS = 3_650
CSV_COLUMNS = ("token", "link", "unit_code", "customer_group", "expires_at")
#: A cell starting with one of these is a formula to a spreadsheet (HQ opens the file in Excel for mail merges).
FORMULA_STARTS = ("=", "+", "-", "@")


class InvitationFileError(ValueError):
    """Links that cannot be issued as asked; the message says why and what to do."""


@dataclass(frozen=True)
class InvitationFiles:
    """What was issued and where it was written."""

    count: int
    expires_at: dt.datetime
    csv_path: Path
    svg_dir: Path | None
    pdf_path: Path | None
    pdf_pages: int


def _check_target(path: Path, what: str) -> None:
    parent = path.parent
    if not parent.is_dir():
        raise InvitationFileError(f"{path}: the folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise InvitationFileError(f"{path}: the folder {parent} is not writable")
    if what == "folder":
        if path.exists() and not path.is_dir():
            raise InvitationFileError(f"{path}: exists and is not a folder")
    elif path.is_dir():
        raise InvitationFileError(f"{path}: is a folder; give a file name")


def check_request(
    campaign: Campaign,
    count: int,
    valid_days: int | None,
    out: Path,
    qr_dir: Path | None,
    qr_pdf: Path | None,
) -> None:
    """Refuse a request that cannot work before anything is issued."""
    if campaign.status == CampaignStatus.CLOSED:
        raise InvitationFileError(f"campaign {campaign.code} is closed; its links could not be answered")
    if isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
        raise InvitationFileError(f"count {count} is not allowed: issue from 1 to {MAX_COUNT:,} links at a time")
    if valid_days is not None and not 1 <= valid_days <= MAX_DAYS:
        raise InvitationFileError(f"days {valid_days} is not allowed: links stay valid from 1 to {MAX_DAYS} days")
    if qr_pdf is not None and count > MAX_PDF_CARDS:
        raise InvitationFileError(
            f"a PDF holds at most {MAX_PDF_CARDS:,} QR codes; issue the links in smaller runs or use --qr DIR"
        )
    targets = [p.resolve() for p in (out, qr_dir, qr_pdf) if p is not None]
    if len(set(targets)) != len(targets):
        raise InvitationFileError("--out, --qr and --qr-pdf must name different places")
    _check_target(out, "file")
    if qr_dir is not None:
        _check_target(qr_dir, "folder")
    if qr_pdf is not None:
        _check_target(qr_pdf, "file")


@contextmanager
def _staging() -> Iterator[list[Path]]:
    """Track temporary files and folders; remove whatever is left of them on the way out."""
    staged: list[Path] = []
    try:
        yield staged
    finally:
        for path in staged:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _temporary_file(target: Path, staged: list[Path]) -> Path:
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    staged.append(Path(name))
    return Path(name)


def issue_invitation_files(
    campaign: Campaign,
    unit: Unit,
    count: int,
    *,
    out: Path,
    customer_group: CustomerGroup = CustomerGroup.HOUSEHOLD,
    valid_days: int | None = None,
    qr_dir: Path | None = None,
    qr_pdf: Path | None = None,
    user: User | None = None,
    actor: str | None = "cli",
    progress: Callable[[int], None] | None = None,
) -> InvitationFiles:
    """Issue ``count`` links for a unit and write them to ``out`` (CSV), ``qr_dir`` (SVGs), ``qr_pdf`` (A4 PDF).

    Raises InvitationFileError (nothing stored, no file left) for a bad request or a file
    that cannot be written.
    """
    check_request(campaign, count, valid_days, out, qr_dir, qr_pdf)
    with _staging() as staged:
        try:
            issued = [
                spreadsheet_safe(item)
                for item in issue_invitations(campaign, unit, count, customer_group, valid_days=valid_days)
            ]
            expires_at = issued[0].invitation.expires_at
            links = [(item.token, survey_link(item.token)) for item in issued]
            audit.record(
                "issue",
                "invitation",
                campaign.code,
                after={
                    "unit": unit.code,
                    "count": count,
                    "customer_group": str(customer_group),
                    "expires_at": expires_at,
                },
                user=user,
                actor=actor,
            )
            csv_tmp = _temporary_file(out, staged)
            with csv_tmp.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(CSV_COLUMNS)
                expires_text = expires_at.astimezone(dt.UTC).isoformat(timespec="seconds")
                writer.writerows((token, link, unit.code, str(customer_group), expires_text) for token, link in links)
            # Each code is made once, for the SVG and the PDF alike.
            codes = [qr.make_code(link) for _, link in links] if qr_dir is not None and qr_pdf is not None else None
            svg_tmp = None
            if qr_dir is not None:
                svg_tmp = Path(tempfile.mkdtemp(dir=qr_dir.parent, prefix=f".{qr_dir.name}.", suffix=".tmp"))
                staged.append(svg_tmp)
                for number, (_, link) in enumerate(links, start=1):
                    qr.write_svg(link, svg_tmp / svg_name(unit, number), codes[number - 1] if codes else None)
                    if progress is not None:
                        progress(1)
            pdf_tmp, pages = None, 0
            if qr_pdf is not None:
                pdf_tmp = _temporary_file(qr_pdf, staged)
                cards = [
                    qr.QrCard(link, caption(campaign, unit, number, expires_at), codes[number - 1] if codes else None)
                    for number, (_, link) in enumerate(links, start=1)
                ]
                pages = qr.write_pdf(cards, pdf_tmp, title=f"{campaign.name_vi} – {unit.name_vi}", progress=progress)
        except OSError as exc:
            db.session.rollback()
            where = exc.filename or out
            raise InvitationFileError(f"{where}: cannot write ({exc.strerror or exc})") from None
        except BaseException:
            db.session.rollback()
            raise
        try:
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        # Only renames are left: same folder, so they are atomic and cannot run out of space.
        os.replace(csv_tmp, out)
        if pdf_tmp is not None and qr_pdf is not None:
            os.replace(pdf_tmp, qr_pdf)
        if svg_tmp is not None and qr_dir is not None:
            _move_folder(svg_tmp, qr_dir)
    return InvitationFiles(count, expires_at, out, qr_dir, qr_pdf, pages)


def spreadsheet_safe(item: IssuedInvitation) -> IssuedInvitation:
    """The same invitation with a token that no spreadsheet reads as a formula (about 1 in 64 starts with '-')."""
    token = item.token
    while token.startswith(FORMULA_STARTS):
        token = secrets.token_urlsafe(TOKEN_BYTES)
    if token == item.token:
        return item
    item.invitation.token_hash = hash_token(token)
    return IssuedInvitation(item.invitation, token)


def svg_name(unit: Unit, number: int) -> str:
    """File name of a link's QR code: the unit and the link's row number in the CSV."""
    return f"{unit.code}-{number:05d}.svg"


def caption(campaign: Campaign, unit: Unit, number: int, expires_at: dt.datetime) -> tuple[str, ...]:
    """The words printed under a QR code, in Vietnamese for the customer."""
    local = expires_at.astimezone(dt.timezone(dt.timedelta(hours=7)))
    return (
        campaign.name_vi,
        unit.name_vi,
        "Quét mã QR để trả lời khảo sát",
        f"Số {number:05d} · hạn {local:%d/%m/%Y}",
    )


def _move_folder(source: Path, target: Path) -> None:
    if not target.exists():
        source.rename(target)
        return
    for path in sorted(source.iterdir()):
        os.replace(path, target / path.name)
    source.rmdir()
