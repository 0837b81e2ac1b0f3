"""Job rows to and from SQLite values: datetimes as fixed-width UTC text, options and mails_sent as JSON."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any, overload

from db.base import DATETIME_FIELDS, JOB_COLUMNS, Job

_JSON_FIELDS = {"options", "mails_sent"}


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("datetimes given to the store must be timezone-aware")
    # A fixed-width UTC form, so that text comparison in SQL is time comparison.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


@overload
def dt(value: str) -> datetime: ...
@overload
def dt(value: None) -> None: ...
def dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def encode(name: str, value: Any) -> Any:
    if name in DATETIME_FIELDS:
        return ts(value)
    if name in _JSON_FIELDS:
        return json.dumps(value)
    return value


def row_to_job(row: sqlite3.Row) -> Job:
    values = {}
    for name in JOB_COLUMNS:
        value = row[name]
        if name in DATETIME_FIELDS:
            value = dt(value)
        elif name in _JSON_FIELDS:
            value = json.loads(value)
        values[name] = value
    return Job(**values)
