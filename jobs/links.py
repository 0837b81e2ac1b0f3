"""Signed, expiring download links (itsdangerous, which Flask ships) and times shown in the user's zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

_SALT = "download-link"


class LinkExpired(Exception):
    """The download link was genuine but is older than LINK_TTL_MINUTES."""


class LinkInvalid(Exception):
    """The download link was not made by this app (tampered or truncated)."""


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def make_download_token(job_id: str) -> str:
    return _serializer().dumps(job_id)


def read_download_token(token: str) -> str:
    """Return the job id in ``token``; raise LinkExpired or LinkInvalid."""
    try:
        return _serializer().loads(token, max_age=float(current_app.config["LINK_TTL_MINUTES"]) * 60)
    except SignatureExpired as exc:
        raise LinkExpired() from exc
    except BadSignature as exc:
        raise LinkInvalid() from exc


def public_url(path: str) -> str:
    """An absolute URL for emails: PUBLIC_URL + path."""
    return current_app.config["PUBLIC_URL"].rstrip("/") + path


def local_time(moment: datetime, zone: str) -> str:
    """Format ``moment`` in the IANA zone ``zone``, e.g. '2026-11-23 14:05 (Europe/Paris)'."""
    try:
        tz = ZoneInfo(zone)
    except Exception:  # noqa: BLE001 - an unknown stored zone falls back to UTC rather than failing a page
        tz, zone = ZoneInfo("UTC"), "UTC"
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M} ({zone})"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"
