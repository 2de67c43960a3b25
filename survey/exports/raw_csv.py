"""The raw-responses export for analysts: one CSV line per response, produced in batches while streaming.

The database does the work: it extracts the items from the answers and, on PostgreSQL, writes
the CSV itself (``COPY … TO STDOUT``); Python forwards the lines in chunks of RAW_BATCH lines.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from ..extensions import db
from ..models import Campaign
from ..services.reports import RAW_BATCH, RAW_COLUMNS, RawFilters, raw_copy_blocks, raw_item_codes, raw_response_batches
from .csv_report import BOM, csv_lines


#: SQLite page cache while exporting, in KiB as PRAGMA cache_size takes it (negative).
EXPORT_SQLITE_CACHE = -8192


def raw_header(campaign: Campaign) -> list[str]:
    """The export's columns: response fields, then one column per item in questionnaire order."""
    return [*RAW_COLUMNS, *raw_item_codes(campaign)]


def raw_csv_chunks(campaign: Campaign, filters: RawFilters) -> Iterator[bytes]:
    """The export as UTF-8 chunks of RAW_BATCH lines; memory holds one batch at a time."""
    # Read what the rows need now: the stream runs after the view's session has closed.
    header = raw_header(campaign)
    return _chunks(campaign.id, header, raw_item_codes(campaign), filters)


def _chunks(campaign_id: int, header: list[str], items: list[str], filters: RawFilters) -> Iterator[bytes]:
    yield (BOM + "".join(csv_lines([header]))).encode("utf-8")
    connection = db.session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        yield from _in_batches(raw_copy_blocks(campaign_id, items, filters))
        return
    # Every cell is already what the CSV needs (raw_statement): numbers, None for blanks, safe text.
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    # The export reads each page once: a small page cache for it keeps the worker's memory flat
    # (the connection's usual 128 MiB cache would fill with pages never read again).
    cache_size = None
    if connection.dialect.name == "sqlite":
        cache_size = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    if cache_size is not None:
        connection.exec_driver_sql(f"PRAGMA cache_size = {EXPORT_SQLITE_CACHE}")
    try:
        for batch in raw_response_batches(campaign_id, items, filters):
            writer.writerows(batch)
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    finally:
        if cache_size is not None:
            connection.exec_driver_sql(f"PRAGMA cache_size = {int(cache_size)}")


def _in_batches(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """Regroup blocks of CSV lines into chunks of RAW_BATCH whole lines (the last one shorter)."""
    pending = bytearray()
    lines = 0
    for block in blocks:
        pending += block
        lines += block.count(b"\n")
        while lines >= RAW_BATCH:
            end = -1
            for _ in range(RAW_BATCH):
                end = pending.index(b"\n", end + 1)
            yield bytes(pending[: end + 1])
            del pending[: end + 1]
            lines -= RAW_BATCH
    if pending:
        yield bytes(pending)
