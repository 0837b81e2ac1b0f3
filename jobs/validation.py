"""Check a job submission (from the HTML form or the JSON API) and turn it into plain values.

``validate_submission`` returns ``(Submission, {})`` or ``(None, {field: message})``; every message is a sentence a
user can act on. The rows of the design's validation table and the extra cases of the core issue are tested in
tests/web/test_validation.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from downloader.options import FORMAT_NAMES as FORMATS

# A time picked "now" is a few seconds old when it arrives; within this it runs at once instead of being refused.
PAST_GRACE = timedelta(seconds=60)
MAX_DIMENSION = 10000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass
class Submission:
    query: str
    email: str
    count: int
    run_at: datetime  # UTC
    timezone: str
    formats: list[str] = field(default_factory=lambda: list(FORMATS))
    min_width: int = 0
    min_height: int = 0

    def options(self) -> dict:
        return {"formats": self.formats, "min_width": self.min_width, "min_height": self.min_height}


def _text(data, name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    return str(value).strip()


def _list(data, name: str) -> list[str]:
    if hasattr(data, "getlist"):
        values = data.getlist(name)
    else:
        values = data.get(name) or []
        if isinstance(values, str):
            values = values.split(",")
    return [str(v).strip().lower() for v in values if str(v).strip()]


def _whole_number(raw, label: str, errors: dict, name: str, low: int, high: int, required: bool) -> int | None:
    text = "" if raw is None else str(raw).strip()
    if isinstance(raw, bool):
        text = "x"  # JSON true/false is not a number
    if not text:
        if required:
            errors[name] = f"{label} is required"
        return None
    if not _INTEGER.match(text):
        errors[name] = f"{label} must be a whole number"
        return None
    number = int(text)
    if not low <= number <= high:
        errors[name] = f"{label} must be between {low} and {high}"
        return None
    return number


def validate_submission(data, *, now: datetime, max_images: int = 500,
                        max_query_length: int = 200) -> tuple[Submission | None, dict[str, str]]:
    """Validate the fields named search-query, email, images, date, time, timezone (+ optional filters)."""
    errors: dict[str, str] = {}

    query = " ".join(_text(data, "search-query").split())
    if not query:
        errors["search-query"] = "search query is required"
    elif len(query) > max_query_length:
        errors["search-query"] = f"search query must be at most {max_query_length} characters"

    email = _text(data, "email")
    if not email:
        errors["email"] = "email is required"
    else:
        try:
            email = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError:
            errors["email"] = "email is invalid"

    raw_count = data.get("images")
    count = _whole_number(raw_count, "number of images", errors, "images", 1, max_images, required=True)

    zone_name = _text(data, "timezone") or "UTC"
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = f"time zone {zone_name[:60]!r} is unknown"
        zone = None

    day = _parse_date(_text(data, "date"), errors)
    clock = _parse_time(_text(data, "time"), errors)

    formats = _list(data, "formats") or list(FORMATS)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        errors["formats"] = f"image formats must be among {', '.join(FORMATS)}"
    min_width = _whole_number(data.get("min-width"), "minimum width", errors, "min-width", 0, MAX_DIMENSION, False)
    min_height = _whole_number(data.get("min-height"), "minimum height", errors, "min-height", 0, MAX_DIMENSION,
                               False)

    run_at = None
    if day and clock and zone:
        run_at = datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)
        if run_at < now - PAST_GRACE:
            errors["time"] = "the scheduled time is in the past"
        run_at = max(run_at, now)

    if errors:
        return None, errors
    return Submission(query=query, email=email, count=count, run_at=run_at, timezone=zone_name,
                      formats=[f for f in FORMATS if f in formats], min_width=min_width or 0,
                      min_height=min_height or 0), {}


def _parse_date(text: str, errors: dict) -> date | None:
    if not text:
        errors["date"] = "date is required"
        return None
    if _DATE.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    errors["date"] = "date must be a real date written YYYY-MM-DD"
    return None


def _parse_time(text: str, errors: dict) -> time | None:
    if not text:
        errors["time"] = "time is required"
        return None
    match = _TIME.match(text)
    if match:
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if hour < 24 and minute < 60 and second < 60:
            return time(hour, minute, second)
    errors["time"] = "time must be written HH:MM (24-hour clock)"
    return None
