"""API keys for programs: ``Authorization: Bearer <key>`` with a key listed in API_KEYS.

A key holder skips the confirmation step and has its own rate limit; a request that sends any other
Authorization header is answered 401 before the view runs (``require_valid_key``).
"""

from __future__ import annotations

import hashlib
import hmac

from flask import abort, current_app, g, request

_SCHEME = "bearer "


def _presented_key() -> str | None:
    """The key in the request's ``Authorization: Bearer`` header, or None when it has none."""
    header = request.headers.get("Authorization", "")
    if header[: len(_SCHEME)].lower() != _SCHEME:
        return None
    return header[len(_SCHEME):].strip()


def _matching_key() -> str | None:
    """The configured key the request carries (compared in constant time), or None; once per request."""
    if "api_key" not in g:
        presented = _presented_key()
        found = None
        if presented:
            for key in current_app.config["API_KEYS"]:
                # Every key is compared, whatever matched, so the time taken says nothing about any key.
                if hmac.compare_digest(presented.encode(), key.encode()):
                    found = key
        g.api_key = found
    return g.api_key


def api_key_client() -> bool:
    """True when the request carries a valid ``Authorization: Bearer <key>``."""
    return _matching_key() is not None


def api_key_id() -> str:
    """A name for the key of this request that is not the key itself (its limit is counted under it)."""
    key = _matching_key() or ""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def require_valid_key() -> None:
    """Answer 401 to a request whose Authorization header is not a valid API key (a ``before_request``)."""
    if "Authorization" in request.headers and not api_key_client():
        abort(401, description="the API key is not valid: send Authorization: Bearer <key> with a key you were given")
