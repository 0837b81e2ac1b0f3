"""App-wide error pages (and JSON errors under /api): a clear sentence and the right status, never a trace."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, Unauthorized

from db import StoreUnavailable
from jobs.links import human_size

log = logging.getLogger(__name__)

UNAVAILABLE = "The service is temporarily unavailable: nothing was saved. Please try again in a minute."


def respond(status: int, title: str, message: str, field: str | None = None) -> Response:
    """The error page, or under /api a JSON ``{"error": ...}`` (with ``errors`` naming ``field`` when given)."""
    if request.path.startswith("/api/"):
        body: dict = {"error": message}
        if field:
            body["errors"] = [{"field": field, "message": message}]
        return make_response(jsonify(body), status)
    return make_response(render_template("error.html", title=title, message=message), status)


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return respond(exc.code or 500, exc.name, exc.description or exc.name)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        limit = human_size(current_app.config["MAX_CONTENT_LENGTH"])
        return respond(413, "Request too large", f"The request body is larger than the {limit} a job may send. "
                                                 "Please shorten your entries.", field="body")

    @app.errorhandler(Unauthorized)
    def unauthorized(exc: Unauthorized):
        response = respond(401, "Unauthorized", exc.description or exc.name, field="Authorization")
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        from web.views import render_form

        if request.method == "POST" and request.path == "/":
            return render_form(request.form, {}, 400, form_error="The form had expired. Please check your "
                                                                 "entries and submit it again.")
        return respond(400, "Bad request", "The form had expired. Please reload the page and try again.")

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(exc: StoreUnavailable):
        log.error("database unavailable: %s", exc)
        response = respond(503, "Temporarily unavailable", UNAVAILABLE)
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        # The route, not the path: a path can hold a download or confirmation token.
        route = request.url_rule.rule if request.url_rule is not None else "(no route)"
        log.exception("unhandled error on %s %s", request.method, route)
        return respond(500, "Server error", "Something went wrong on our side. Please try again.")
