"""The app factory: ``flask --app app run`` and ``gunicorn 'app:create_app()'`` both call ``create_app()``."""

from __future__ import annotations

import importlib
import logging
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any

import click
from dotenv import load_dotenv
from flask import Flask
from flask.cli import AppGroup

import config

log = logging.getLogger(__name__)

# Paths whose last part is a secret (a signed download link, a confirmation token): never written to a log.
_SECRET_PATH = re.compile(r"(/(?:download|confirm)/)[^/?#\s\"]+")
# gunicorn's exit status for a worker that cannot boot: its master then stops instead of starting it again.
EXIT_CANNOT_START = 3


def redact_secret_paths(text: str) -> str:
    """``text`` with the token of every download or confirmation path replaced by ``[redacted]``."""
    return _SECRET_PATH.sub(r"\1[redacted]", text)


class _RedactSecretPaths(logging.Filter):
    """Keep tokens out of the development server's request lines (werkzeug logs each request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_secret_paths(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class _RedactLimitKeys(logging.Filter):
    """Keep client addresses out of Flask-Limiter's "limit exceeded" lines: its key is the client's IP address,
    personal data that a log would keep past the retention."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 3 and "exceeded at endpoint" in str(record.msg):
            record.args = (record.args[0], "[client]", record.args[2])
        return True


def _require_secret_key(config: dict[str, Any]) -> None:
    """Outside local development every process must sign with the same key: refuse to start without one."""
    if config.get("SECRET_KEY"):
        return
    if config["SCHEDULER"] == "worker" or str(config["PUBLIC_URL"]).startswith("https://"):
        log.critical("SECRET_KEY is not set: refusing to start (it is required with SCHEDULER=worker or an https "
                     "PUBLIC_URL, and must be the same in every process)")
        raise SystemExit(EXIT_CANNOT_START)
    config["SECRET_KEY"] = secrets.token_hex(32)
    # Only the web app hands out links that outlive the process; a command such as run-job or fetch signs nothing.
    command = os.environ.get("FLASK_RUN_FROM_CLI") == "true" and "run" not in sys.argv[1:]
    (log.debug if command else log.warning)(
        "SECRET_KEY is not set: using a random key, so download links die when the app restarts")


def configure_logging(level: str) -> None:
    """Log to stderr (Heroku collects it; stdout stays free for CLI output) once per process, before the app."""
    root = logging.getLogger()
    if not any(getattr(h, "_aid", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s"))
        handler._aid = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("urllib3", "selenium", "apscheduler.executors", "cassandra"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for name, redact in (("werkzeug", _RedactSecretPaths), ("flask-limiter", _RedactLimitKeys)):
        logger = logging.getLogger(name)
        if not any(isinstance(f, redact) for f in logger.filters):
            logger.addFilter(redact())


# The app's own commands, each imported only when it is asked for: `flask fetch` needs neither Selenium nor the jobs.
LAZY_COMMANDS = {"run-job": "jobs.cli:run_job", "collect": "scraper.cli:collect", "fetch": "downloader.cli:fetch",
                 "crawl": "crawler.cli:crawl"}


class LazyCommands(AppGroup):
    """``app.cli`` whose LAZY_COMMANDS are imported on first use (``flask --help`` still lists them all)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, name = LAZY_COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), name), cmd_name)
        return super().get_command(ctx, cmd_name)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the app: defaults, then the environment (and a local .env), then ``test_config``."""
    load_dotenv(Path(__file__).with_name(".env"))
    app = Flask(__name__, instance_relative_config=True)
    app.cli = LazyCommands(app.name)
    app.config.update(config.load())
    if test_config:
        app.config.update(test_config)
    configure_logging(app.config["LOG_LEVEL"])
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    _require_secret_key(app.config)
    if not app.config.get("DATA_DIR"):
        app.config["DATA_DIR"] = os.path.join(app.instance_path, "data")

    import db
    import mailer
    import scheduler
    import web

    db.init_app(app)
    mailer.init_app(app)
    web.init_app(app)
    try:
        db.get_store(app)
    except db.StoreUnavailable as exc:
        # A restart during a database outage still serves: pages answer 503 until the database is back.
        log.error("database unavailable at start (%s); requests answer 503 until it is back", exc)
    scheduler.init_app(app)
    return app
