"""The database: a ``Store`` chosen by the scheme of ``DATABASE_URL`` (sqlite:// or cassandra://).

``init_app`` opens nothing: the store is created, and its tables made sure of, on first use in each process
(after a gunicorn fork) and kept by the ``PerProcess`` in ``app.extensions["store"]``. ``get_store()`` returns it
for the current app.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from db.base import (
    ACTIVE,
    CANCELLED,
    DONE,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    UNCONFIRMED,
    WAITING,
    Event,
    ImageUrl,
    Job,
    LimitReached,
    Store,
    StoreError,
    StoreUnavailable,
)
from db.per_process import PerProcess

__all__ = [
    "ACTIVE", "CANCELLED", "DONE", "FAILED", "FINISHED", "QUEUED", "RUNNING", "UNCONFIRMED", "WAITING", "Event",
    "ImageUrl", "Job", "LimitReached", "Store", "StoreError", "StoreUnavailable", "get_store", "init_app", "open_store",
]


def open_store(url: str, config: Mapping[str, Any] | None = None) -> Store:
    """Open the store named by ``url``; ``config`` carries backend settings (credentials, retention)."""
    config = config or {}
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from db.sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    if scheme == "cassandra":
        from db.cassandra import CassandraStore

        return CassandraStore.from_url(url, config)
    raise ValueError(f"DATABASE_URL must start with sqlite:// or cassandra://, got {url!r}")


def get_store(app: Flask | None = None) -> Store:
    """Return this process's store for ``app`` (the current app by default), opening it on first use."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    holder: PerProcess[Store] = app.extensions["store"]
    return holder.get(lambda: _open_ready(app))


def _open_ready(app: Flask) -> Store:
    store = open_store(app.config["DATABASE_URL"], app.config)
    try:
        store.init_schema()  # idempotent; if the database is down nothing is kept and the next call retries
    except BaseException:
        store.close()
        raise
    return store


def init_app(app: Flask) -> None:
    """Register the store holder, the default SQLite location and the ``init-db`` command."""
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = "sqlite:///" + str(Path(app.instance_path) / "aid.sqlite3")
    app.extensions["store"] = PerProcess()
    app.cli.add_command(init_db_command)


def close_store(app: Flask) -> None:
    """Close this process's store, if it was opened."""
    holder: PerProcess[Store] | None = app.extensions.get("store")
    store = holder.pop() if holder is not None else None
    if store is not None:
        store.close()


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create the database tables (safe to run again)."""
    get_store()
    click.echo(f"database ready: {current_app.config['DATABASE_URL'].split('@')[-1]}")
