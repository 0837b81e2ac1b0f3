"""Rate limits on submissions (Flask-Limiter): per client address, or per API key for key holders.

Only submissions that create a job count (a form sent back with its errors does not): the limit is checked
before the view and deducted after it, from the response's status. Counts live in RATE_LIMIT_STORAGE_URL
(memory:// for one process, redis:// shared by several). A moving window: at most N in any stretch of the
period, whatever the clock says. When the count store is unreachable, submissions go through (logged).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

from web import auth
from web.errors import respond

# The views whose successful requests count; only their POST is limited (GET / shows the form).
SUBMIT_ENDPOINTS = ("web.submit", "api.create_job")
# Only the API hands out the key's own limit; the form is for people.
API_KEY_ENDPOINTS = ("api.create_job",)


def _created(response: Response) -> bool:
    return response.status_code < 400


def _submit_limit() -> str:
    return current_app.config["RATE_LIMIT_SUBMIT"]


def _api_key_limit() -> str:
    return current_app.config["RATE_LIMIT_API_KEY"]


def _no_api_key() -> bool:
    return not auth.api_key_client()


def init_app(app: Flask) -> None:
    """Give this app its own limiter (its own counts) and put the limits on the submitting views."""
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["RATE_LIMIT_STORAGE_URL"])
    limiter = Limiter(get_remote_address, swallow_errors=True)
    limiter.init_app(app)
    app.extensions["rate_limiter"] = limiter
    for endpoint in SUBMIT_ENDPOINTS:
        is_api = endpoint in API_KEY_ENDPOINTS
        # One count for the form and the API together ("submit"), whichever a client uses.
        view: Callable[..., Any] = limiter.shared_limit(_submit_limit, "submit", methods=["POST"], deduct_when=_created,
                                    exempt_when=auth.api_key_client if is_api else None)(app.view_functions[endpoint])
        if is_api:
            view = limiter.shared_limit(_api_key_limit, "api-key", key_func=auth.api_key_id, methods=["POST"],
                                        deduct_when=_created, exempt_when=_no_api_key)(view)
        app.view_functions[endpoint] = view
    app.register_error_handler(RateLimitExceeded, too_many_submissions)


def retry_after_seconds() -> int:
    """Seconds until the breached limit of this request lets one more submission through."""
    limiter: Limiter = current_app.extensions["rate_limiter"]
    breached = limiter.current_limit
    if breached is None:
        return 60
    return max(1, math.ceil(breached.reset_at - time.time()))


def too_many_submissions(exc: RateLimitExceeded):
    """429 with Retry-After and a sentence that says when to try again (a page, or JSON under /api)."""
    seconds = retry_after_seconds()
    wait = f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"
    message = (f"Too many submissions from your address (at most {exc.limit.limit}). "
               f"Please try again in {wait}.")
    response = respond(429, "Too many submissions", message)
    response.headers["Retry-After"] = str(seconds)
    return response
