"""The one CSV writer of every export: the verdicts API (`?format=csv`) and the dashboard tables.

Spreadsheet programs run a cell that starts with `=`, `+`, `-` or `@` as a formula, and some
strip a leading tab or carriage return first. A caption, external id, label or user name that
someone else chose could then run `=HYPERLINK(...)` or worse when a lead opens the file (OWASP
"CSV injection"). Such text cells get a leading single quote, which spreadsheets show as plain
text. Only text is touched: a number such as -0.5 stays a number.

No app imports here: any app's exports can use it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def csv_cell(value: Any) -> Any:
    """One cell: None becomes empty, text that a spreadsheet would run gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_rows(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[list[Any]]:
    """The header, then each row's cells in `columns` order (missing keys are empty)."""
    yield [csv_cell(c) for c in columns]
    for row in rows:
        yield [csv_cell(row.get(c)) for c in columns]


def write_csv(stream: Writable, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Write the table to `stream` (a file, a StringIO or a Django HttpResponse)."""
    csv.writer(stream).writerows(csv_rows(columns, rows))


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    write_csv(out, columns, rows)
    return out.getvalue()
