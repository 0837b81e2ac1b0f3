"""App-wide error pages (and JSON errors under /api): a clear sentence and the right status, never a trace."""

from __future__ import annotations

import logging

from flask import jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from db import StoreUnavailable

log = logging.getLogger(__name__)

UNAVAILABLE = "The service is temporarily unavailable: nothing was saved. Please try again in a minute."


def _respond(status: int, title: str, message: str):
    if request.path.startswith("/api/"):
        return make_response(jsonify(error=message), status)
    return make_response(render_template("error.html", title=title, message=message), status)


def register(app) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _respond(exc.code or 500, exc.name, exc.description or exc.name)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        from web.views import render_form

        if request.method == "POST" and request.path == "/":
            return render_form(request.form, {}, 400, form_error="The form had expired. Please check your "
                                                                 "entries and submit it again.")
        return _respond(400, "Bad request", "The form had expired. Please reload the page and try again.")

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(exc: StoreUnavailable):
        log.error("database unavailable: %s", exc)
        response = _respond(503, "Temporarily unavailable", UNAVAILABLE)
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _respond(500, "Server error", "Something went wrong on our side. Please try again.")
