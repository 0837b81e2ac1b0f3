"""Signed, expiring links (itsdangerous, which Flask ships) for downloads and address confirmation, and times
shown in the user's zone."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

_SALT = "download-link"
_CONFIRM_SALT = "confirm-address"


class LinkExpired(Exception):
    """The download link was genuine but is older than LINK_TTL_MINUTES."""


class LinkInvalid(Exception):
    """The download link was not made by this app (tampered or truncated)."""


def _serializer(salt: str = _SALT) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _read(token: str, salt: str, max_age: float) -> str:
    try:
        return _serializer(salt).loads(token, max_age=max_age)  # type: ignore[arg-type]  # a float works
    except SignatureExpired as exc:
        raise LinkExpired() from exc
    except BadSignature as exc:
        raise LinkInvalid() from exc


def make_download_token(job_id: str) -> str:
    return _serializer().dumps(job_id)


def read_download_token(token: str) -> str:
    """Return the job id in ``token``; raise LinkExpired or LinkInvalid."""
    return _read(token, _SALT, float(current_app.config["LINK_TTL_MINUTES"]) * 60)


def make_confirm_token(job_id: str) -> str:
    """The token of a confirmation link: the job that asked for it, signed with a salt of its own."""
    return _serializer(_CONFIRM_SALT).dumps(job_id)


def read_confirm_token(token: str) -> str:
    """Return the job id in a confirmation token; raise LinkExpired (after CONFIRMATION_HOURS) or LinkInvalid."""
    return _read(token, _CONFIRM_SALT, float(current_app.config["CONFIRMATION_HOURS"]) * 3600)


def public_url(path: str) -> str:
    """An absolute URL for emails: PUBLIC_URL + path."""
    return current_app.config["PUBLIC_URL"].rstrip("/") + path


def _zone(zone: str) -> tuple[ZoneInfo, str]:
    try:
        return ZoneInfo(zone), zone
    except Exception:  # noqa: BLE001 - an unknown stored zone falls back to UTC rather than failing a page
        return ZoneInfo("UTC"), "UTC"


def local_time(moment: datetime, zone: str) -> str:
    """Format ``moment`` in the IANA zone ``zone``, e.g. '2026-11-23 14:05 (Europe/Paris)'."""
    tz, zone = _zone(zone)
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M} ({zone})"


def clock_time(moment: datetime, zone: str) -> str:
    """The time of day of ``moment`` in ``zone``, e.g. '14:05:09' (the zone is said once, beside the log)."""
    return f"{moment.astimezone(_zone(zone)[0]):%H:%M:%S}"


def form_path(query_lines: list[str], count: int, zone: str, options: dict) -> str:
    """The home page with the form filled in as for this job (for "try again" and "submit it again")."""
    fields: dict[str, object] = {"search-query": "\n".join(query_lines), "images": count, "timezone": zone}
    if options.get("mode") == "crawl":
        fields = {"mode": "crawl", "start-url": options.get("start_url", ""), "images": count, "timezone": zone,
                  "max-pages": options.get("max_pages", ""), "depth": options.get("depth", ""),
                  "render": options.get("render", "")}
    formats = options.get("formats") or []
    if formats:
        fields["formats"] = list(formats)
    for name in ("min_width", "min_height"):
        if options.get(name):
            fields[name.replace("_", "-")] = options[name]
    for name in ("split", "licence"):
        if options.get(name):
            fields[name] = options[name]
    return "/?" + urlencode(fields, doseq=True)


def human_size(size: int) -> str:
    """A size people read, e.g. '15.6 MB' (units of 1024)."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"
