"""Request bodies: at most MAX_CONTENT_LENGTH bytes however they are sent, and JSON parsed without a 500."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge


class BadBody(ValueError):
    """The body is not a JSON object; the message says why, in words for the client."""


def refuse_oversized_stream() -> None:
    """413 for a body sent without Content-Length (chunked) that reaches the limit.

    Werkzeug refuses a declared Content-Length over the limit itself; a chunked body it silently cuts at the
    limit, which would then fail to parse with a misleading message.
    """
    if request.content_length is not None or request.method not in {"POST", "PUT", "PATCH"}:
        return
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit is not None and len(request.get_data(cache=True)) >= limit:
        raise RequestEntityTooLarge()


def json_object() -> dict[str, Any]:
    """The body as a JSON object; raise BadBody when it is not one."""
    try:
        data = request.get_json(silent=True)
    except RecursionError as exc:  # the parser recurses once per level: thousands of levels exhaust the stack
        raise BadBody("the body is nested too deeply to be a job") from exc
    if not isinstance(data, dict):
        raise BadBody("the body must be a JSON object")
    return data


def init_app(app: Flask) -> None:
    """Check the body's size before anything reads it (CSRF reads the form): register this first."""
    app.before_request(refuse_oversized_stream)
