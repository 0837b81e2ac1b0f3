"""Check a job submission (from the HTML form or the JSON API) and turn it into plain values.

``validate_submission`` returns ``(Submission, {})`` or ``(None, {field: message})``; every message is a sentence a
user can act on. Nothing a stranger types can reach our emails as a link or as hidden text: a query with a web
address is refused, and so are control and direction-changing characters in every field. The rows of the design's
validation table and the extra cases of the core issue are tested in tests/jobs/test_validation.py.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from downloader import LAYOUTS, SPLITS
from downloader.options import FORMAT_NAMES as FORMATS
from jobs import crawl_fields
from jobs.classes import distinct_queries
from scraper.licences import FILTERS as LICENCES

# A time picked as "now" has minutes only and is a few seconds old when it arrives: the minute picked, or the one
# before it when the minute turned while the person clicked, runs at once instead of being refused as past (a 60 s
# grace refused HH:MM sent at HH:MM+1:00.1).
PAST_GRACE = timedelta(seconds=120)
PAST_TIME = "the scheduled time is in the past"
MAX_DIMENSION = 10000
MAX_ZONE_LENGTH = 64  # the longest IANA name is about 30 characters
# ASCII digits only: Python's \d also takes Arabic-Indic and other digits, which our emails would then print.
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_TIME = re.compile(r"^([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_MAX_DIGITS = 12
_WEB_ADDRESS = re.compile(r"://|www\.", re.IGNORECASE)
# Direction-changing characters (Unicode bidi embeddings, overrides, isolates and marks): they can make a text
# read differently from what it holds.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
FIELDS = {"search-query": "search query", "email": "email", "images": "number of images", "date": "date",
          "time": "time", "timezone": "time zone", "formats": "image formats", "min-width": "minimum width",
          "min-height": "minimum height", "split": "split", "layout": "layout", "licence": "licence",
          "mode": "mode", "start-url": "start URL", "max-pages": "most pages", "depth": "depth", "render": "render"}
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")


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
    queries: list[str] = field(default_factory=list)  # one per class; ``query`` is them joined by ", "
    split: str | None = None
    layout: str = "imagefolder"
    licence: str = "any"
    crawl: crawl_fields.CrawlFields | None = None  # a crawl job ("mode": "crawl"): its start URL and limits

    def options(self) -> dict:
        if self.crawl is not None:
            return {"mode": "crawl", **self.crawl.options()}
        options = {"formats": self.formats, "min_width": self.min_width, "min_height": self.min_height,
                   "split": self.split, "layout": self.layout, "licence": self.licence}
        if len(self.queries) > 1:
            options["classes"] = list(self.queries)  # a one-query job keeps the shape it always had
        return options


def _text(data, name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    return str(value).strip()


def hidden_characters(text: str) -> bool:
    """True when ``text`` holds a control character or one that changes the reading direction."""
    return any(ch in _BIDI or unicodedata.category(ch) == "Cc" for ch in text)


def _values(data, name: str) -> list:
    if hasattr(data, "getlist"):
        return data.getlist(name)
    value = data.get(name)
    if name == "formats" and isinstance(value, list):
        return value
    return [] if value is None else [value]


def _unsafe_fields(data) -> dict[str, str]:
    """Refuse, in every known field, nested JSON values and text with hidden characters (the search query may
    hold line breaks, one query a line, or be a JSON list of strings)."""
    errors = {}
    for name, label in FIELDS.items():
        for value in _values(data, name):
            if name == "search-query" and isinstance(value, list) and all(isinstance(v, str) for v in value):
                value = "\n".join(value)
            if isinstance(value, dict | list):
                errors[name] = f"{label} must be text or a number"
            elif name == "search-query" and any(map(hidden_characters, _LINE_BREAKS.split(str(value)))):
                errors[name] = f"{label} cannot contain control or direction-changing characters"
            elif name != "search-query" and hidden_characters(str(value)):
                errors[name] = f"{label} cannot contain control or direction-changing characters"
    return errors


def _queries(data, max_length: int, max_classes: int, errors: dict) -> list[str]:
    """The distinct queries, one a line (or a JSON list), each checked; the field's error names the bad line."""
    raw = data.get("search-query")
    lines = raw if isinstance(raw, list) else _LINE_BREAKS.split("" if raw is None else str(raw))
    queries = distinct_queries(str(line) for line in lines)
    several = len(queries) > 1
    if not queries:
        errors["search-query"] = "search query is required"
    elif len(queries) > max_classes:
        errors["search-query"] = f"at most {max_classes} search queries (classes), one a line"
    for number, query in enumerate(queries, start=1):
        where = f"search query {number} (“{query[:40]}”)" if several else ""
        if len(query) > max_length:
            errors["search-query"] = f"{where or 'search query'} must be at most {max_length} characters"
        elif _WEB_ADDRESS.search(query):
            errors["search-query"] = f"{where or 'the search query'} cannot contain a web address"
        if "search-query" in errors:
            break
    return queries


def check_queries(lines: list[str], max_length: int = 200, max_classes: int = 10) -> tuple[list[str], str | None]:
    """The distinct queries of ``lines`` and the form's error for them (None when they are fine): for `run-job`."""
    if any(hidden_characters(str(line)) for line in lines):
        return [], "search query cannot contain control or direction-changing characters"
    errors: dict[str, str] = {}
    queries = _queries({"search-query": list(lines)}, max_length, max_classes, errors)
    return queries, errors.get("search-query")


def _choice(data, name: str, choices, default: str | None, errors: dict) -> str | None:
    value = _text(data, name).lower()
    if not value or value == "none":
        return default
    if value not in choices:
        errors[name] = f"{FIELDS[name]} must be one of {', '.join(choices)}"
    return value


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
    if len(text.lstrip("+-")) > _MAX_DIGITS:
        errors[name] = f"{label} must be between {low} and {high}"
        return None
    number = int(text)
    if not low <= number <= high:
        errors[name] = f"{label} must be between {low} and {high}"
        return None
    return number


def _normal_email(text: str) -> str | None:
    """The address in its normal form, or None when it is not one. email_validator is imported here, on first use:
    its patterns take about 25 ms to compile, and commands such as ``flask fetch`` never check an address."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def check(data, config: Mapping[str, Any], now: datetime) -> tuple[Submission | None, dict[str, str]]:
    """Validate ``data`` with the limits of the app's settings."""
    crawl = crawl_fields.limits(config) if _text(data, "mode").lower() == "crawl" else None
    return validate_submission(data, now=now, max_images=int(config["MAX_IMAGES"]),
                               max_query_length=int(config["MAX_QUERY_LENGTH"]),
                               max_schedule_days=int(config["MAX_SCHEDULE_DAYS"]),
                               max_classes=int(config["MAX_CLASSES"]), crawl=crawl)


def validate_submission(data, *, now: datetime, max_images: int = 500, max_query_length: int = 200,
                        max_schedule_days: int = 30, max_classes: int = 10,
                        crawl: crawl_fields.Limits | None = None) -> tuple[Submission | None, dict[str, str]]:
    """Validate the fields named search-query (one query a line), email, images (per class), date, time,
    timezone (+ optional filters, split, layout and licence); with ``crawl`` (the mode "crawl"), start-url,
    max-pages, depth and render instead of the query, split, layout and licence."""
    unsafe = _unsafe_fields(data)
    if unsafe:
        # Values that are not plain text are not parsed further: each field named once, with that reason.
        data = {name: value for name, value in _items(data) if name not in unsafe}
    errors: dict[str, str] = {}

    mode = _text(data, "mode").lower() or "search"
    if mode not in ("search", "crawl") and "mode" not in unsafe:
        errors["mode"] = "mode must be search or crawl"
    crawling = None
    if crawl is not None:
        crawling = crawl_fields.check(data, crawl, errors, _whole_number)
        queries = [crawling.site] if crawling else []
        max_images = crawl.max_images
    else:
        queries = _queries(data, max_query_length, max_classes, errors)

    email = _text(data, "email")
    if not email:
        errors["email"] = "email is required"
    else:
        normal = _normal_email(email)
        if normal is None:
            errors["email"] = "email is invalid"
        else:
            email = normal

    raw_count = data.get("images")
    count = _whole_number(raw_count, "number of images", errors, "images", 1, max_images, required=True)

    zone_name = _text(data, "timezone") or "UTC"
    zone = _zone(zone_name, errors)

    day = _parse_date(_text(data, "date"), errors)
    clock = _parse_time(_text(data, "time"), errors)

    formats = _list(data, "formats") or list(FORMATS)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        errors["formats"] = f"image formats must be among {', '.join(FORMATS)}"
    min_width = _whole_number(data.get("min-width"), "minimum width", errors, "min-width", 0, MAX_DIMENSION, False)
    min_height = _whole_number(data.get("min-height"), "minimum height", errors, "min-height", 0, MAX_DIMENSION,
                               False)

    split = _choice(data, "split", SPLITS, None, errors)
    layout = _choice(data, "layout", LAYOUTS, "imagefolder", errors) or "imagefolder"
    licence = _choice(data, "licence", LICENCES, "any", errors) or "any"

    run_at = None
    if day and clock and zone:
        run_at = _run_at(day, clock, zone, now, max_schedule_days, errors)

    errors.update(unsafe)
    if errors or count is None or run_at is None:
        return None, errors
    return Submission(query=", ".join(queries), email=email, count=count, run_at=run_at, timezone=zone_name,
                      formats=[f for f in FORMATS if f in formats], min_width=min_width or 0,
                      min_height=min_height or 0, queries=queries, split=split, layout=layout, licence=licence,
                      crawl=crawling), {}


def _items(data) -> list[tuple[str, Any]]:
    if hasattr(data, "getlist"):
        return [(name, data.getlist(name) if name == "formats" else data.get(name)) for name in data]
    return list(data.items())


@functools.cache
def zone_names() -> list[str]:
    """Every IANA zone name this machine knows, sorted (the form's time zone list)."""
    return sorted(available_timezones() | {"UTC"})


def _zone(name: str, errors: dict) -> ZoneInfo | None:
    if len(name) <= MAX_ZONE_LENGTH:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    errors["timezone"] = f"time zone {name[:60]!r} is unknown"
    return None


def _run_at(day: date, clock: time, zone: ZoneInfo, now: datetime, max_days: int, errors: dict) -> datetime | None:
    """The run time in UTC, refused when it is past or more than ``max_days`` ahead."""
    too_far = f"the scheduled time must be within {max_days} days"
    try:
        run_at = datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)
    except OverflowError:  # a date at the end of the calendar (year 9999) in a zone behind UTC
        errors["date"] = too_far
        return None
    if run_at < now - PAST_GRACE:
        errors["time"] = PAST_TIME
    elif run_at > now + timedelta(days=max_days):
        errors["date"] = too_far
    return max(run_at, now)


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
