"""A whole filtered list as CSV, streamed batch by batch: memory stays one batch, whatever the size."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime

from litestar.response import Stream

# A cell starting with one of these is a formula to a spreadsheet: such text is exported
# with a leading apostrophe, so a client named "=HYPERLINK(...)" stays text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int):  # a number, negative amounts included, is no formula
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


async def _lines(
    header: list[str], batches: AsyncIterator[list[dict]], to_cells: Callable[[list[dict]], Iterable[list[object]]]
) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    yield buffer.getvalue().encode()
    async for rows in batches:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([cell(v) for v in values] for values in to_cells(rows))
        yield buffer.getvalue().encode()


class CsvStream(Stream):
    """A Stream that keeps its own media type: Litestar's Stream lets the handler's (JSON) win."""

    def to_asgi_response(self, *args, **kwargs):
        kwargs["media_type"] = self.media_type
        return super().to_asgi_response(*args, **kwargs)


def csv_export(
    filename: str,
    header: list[str],
    batches: AsyncIterator[list[dict]],
    to_cells: Callable[[list[dict]], Iterable[list[object]]],
) -> Stream:
    """`to_cells` turns one batch of rows into CSV rows (it may await nothing: batch lookups
    belong in `batches`)."""
    return CsvStream(
        _lines(header, batches, to_cells),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
