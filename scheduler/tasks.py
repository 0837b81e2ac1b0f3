"""The functions APScheduler calls: module-level, taking ids (an app key and a job id), never objects."""

from __future__ import annotations

import weakref

from flask import Flask

_apps: weakref.WeakValueDictionary[str, Flask] = weakref.WeakValueDictionary()


def register(app: Flask) -> str:
    key = f"app-{id(app)}"
    _apps[key] = app
    return key


def run_job(app_key: str, job_id: str) -> None:
    from jobs.runner import run_job as run

    app = _apps.get(app_key)
    scheduler = app.extensions.get("scheduler") if app is not None else None
    if app is not None and scheduler is not None:
        run(app, job_id, should_stop=scheduler.stopping.is_set)


def maintain(app_key: str) -> None:
    from jobs.cleanup import maintain as upkeep

    app = _apps.get(app_key)
    if app is not None:
        upkeep(app)


def sync(app_key: str) -> None:
    app = _apps.get(app_key)
    scheduler = app.extensions.get("scheduler") if app is not None else None
    if scheduler is not None:
        scheduler.sync()
