"""The raw-responses export for analysts: one CSV line per response, produced in batches while streaming."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

from ..models import Campaign
from ..services.reports import RAW_BATCH, RAW_COLUMNS, RawFilters, raw_item_codes, raw_responses
from .csv_report import BOM, csv_lines


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
    lines = csv_lines(raw_responses(campaign_id, items, filters))
    while batch := list(islice(lines, RAW_BATCH)):
        yield "".join(batch).encode("utf-8")
