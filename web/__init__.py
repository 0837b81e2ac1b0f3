"""The web layer: pages, the JSON API, error pages, CSRF (Flask-WTF), rate limits, API keys and security headers."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from web import api, bodies, errors, headers, limits, views

csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    """Register the blueprints and error pages; protect forms against CSRF (the JSON API takes no cookies)."""
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies > 0:
        # The client's address and scheme as the trusted proxies saw them (never the Host: links use PUBLIC_URL).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    bodies.init_app(app)
    csrf.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)
    errors.register(app)
    headers.init_app(app)
    limits.init_app(app)
