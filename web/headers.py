"""Security headers on every response and the session cookie's flags, in one place.

Job pages and download links carry secrets in their URLs: no referrer leaves the site, no page may be framed,
no script runs but our own files (the templates have no inline script or style).
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"
# Responses that must stay out of every cache, shared or the browser's own: the zip is someone's data.
PRIVATE_ENDPOINTS = {"web.download", "web.thumbnail"}


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with the cookie marked Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(super().get_cookie_secure(app) or request.is_secure)


def add_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:  # behind Heroku's router this needs TRUSTED_PROXIES for X-Forwarded-Proto
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if request.endpoint in PRIVATE_ENDPOINTS:
        response.headers["Cache-Control"] = "private, no-store"
    return response


def init_app(app: Flask) -> None:
    """Send the headers on every response; the session cookie is SameSite=Lax (and Secure over HTTPS)."""
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if app.config["PUBLIC_URL"].startswith("https://"):
        app.config["SESSION_COOKIE_SECURE"] = True
    app.session_interface = SessionInterface()
    app.after_request(add_headers)
