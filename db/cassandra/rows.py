"""Job rows to and from Cassandra values: timestamps cut to the millisecond, options as JSON, empty lists as null."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, overload

from db.base import DATETIME_FIELDS, JOB_COLUMNS, Job

_COUNTS = {"count", "attempts", "candidates", "delivered", "zip_bytes"}


@overload
def to_ms(value: datetime) -> datetime: ...
@overload
def to_ms(value: None) -> None: ...
def to_ms(value: datetime | None) -> datetime | None:
    """Return ``value`` as UTC, cut to the millisecond Cassandra keeps."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("datetimes given to the store must be timezone-aware")
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """Return a timestamp read from Cassandra (naive UTC) as a timezone-aware datetime."""
    return None if value is None else value.replace(tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def encode(name: str, value: Any) -> Any:
    """Return the Cassandra value of the job field ``name``."""
    if name in DATETIME_FIELDS:
        return to_ms(value)
    if name == "options":
        return json.dumps(value or {})
    if name == "mails_sent":
        return list(value or []) or None  # an empty frozen list reads back as null: store null so conditions match
    return value


def row_to_job(row: Any) -> Job:
    values = {}
    for name in JOB_COLUMNS:
        value = getattr(row, name)
        if name in DATETIME_FIELDS:
            value = as_utc(value)
        elif name == "options":
            value = json.loads(value) if value else {}
        elif name == "mails_sent":
            value = list(value or [])
        elif name in _COUNTS:
            value = value or 0
        values[name] = value
    return Job(**values)


def row_values(row: Any) -> dict[str, Any]:
    """Return a job row's fields as the store writes them back (datetimes aware, options decoded)."""
    values = {n: getattr(row, n) for n in JOB_COLUMNS}
    for name in DATETIME_FIELDS:
        values[name] = as_utc(values[name])
    values["options"] = json.loads(row.options) if row.options else {}
    return values


def write_row(job_id: str, values: dict[str, Any], ttl: int, condition: str, cond_params: list) -> tuple[str, list]:
    """Return the conditional UPDATE (and its parameters) that writes every column of a job row with ``ttl``."""
    names = [n for n in JOB_COLUMNS if n != "id"]
    cql = (
        "UPDATE {ks}.jobs USING TTL ? SET " + ", ".join(f"{n} = ?" for n in names)
        + f" WHERE id = ? IF {condition}"
    )  # fmt: skip
    params = [ttl, *[encode(n, values.get(n)) for n in names], job_id, *cond_params]
    return cql, params
