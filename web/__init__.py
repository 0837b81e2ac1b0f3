"""The web layer: pages, the JSON API, error pages and CSRF protection (Flask-WTF)."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from web import api, errors, views

csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    """Register the blueprints and error pages; protect forms against CSRF (the JSON API takes no cookies)."""
    csrf.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)
    errors.register(app)
