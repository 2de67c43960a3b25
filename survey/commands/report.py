"""`flask report CODE --format csv|xlsx|pdf --out PATH`: write the reconciled report of a campaign."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from .. import exports
from ..cli import fail
from ..services import reports


def write_atomically(path: Path, data: bytes) -> None:
    """Write the whole file or nothing: a temporary file beside the target, renamed into place."""
    directory = path.parent
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def register(groups: dict[str, click.Group]) -> None:
    """Add `flask report` to the CLI."""

    @groups["root"].command("report")
    @click.argument("code")
    @click.option("--format", "fmt", required=True, type=click.Choice(exports.FORMATS),
                  help="csv (DESIGN.md columns), xlsx (units, raters, method) or pdf (printable, with charts).")
    @click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True, path_type=Path),
                  help="The file to write; it is replaced whole or not at all.")
    @click.option("--lang", default="vi", show_default=True, type=click.Choice(["vi", "en"]),
                  help="Language of unit names, reasons and headings.")
    def report_command(code: str, fmt: str, out: Path, lang: str) -> None:
        """Write the reconciled report of campaign CODE."""
        campaign = reports.find_campaign(code)
        if campaign is None:
            raise fail(f"there is no campaign {code!r}; check the code (for example 2017) and try again")
        if not out.parent.is_dir():
            raise fail(f"the folder {str(out.parent)!r} does not exist; create it or choose another --out path")
        if out.is_dir():
            raise fail(f"{str(out)!r} is a folder; give a file name, e.g. {out / exports.filename(code, fmt)}")
        data = exports.write_report(reports.build_report(campaign), fmt, lang)
        try:
            write_atomically(out, data)
        except OSError as error:
            raise fail(f"cannot write {str(out)!r}: {error.strerror or error}; choose another --out path") from None
        reports.record_export(campaign, fmt, {"lang": lang, "path": out.name}, actor="cli")
        click.echo(f"Wrote the {fmt.upper()} report of campaign {campaign.code} to {out} ({len(data):,} bytes).")
