"""APScheduler in the app's process; the database stays the source of truth.

At start every queued job is registered (a job whose time passed while the app was down runs at once); a poll
registers jobs queued by other processes; a periodic upkeep recovers interrupted jobs, deletes expired data and
retries unsent email. Each job is claimed in the database before it runs, so it runs once however many
processes schedule it. The scheduler starts once per process, never at import, and not in tests unless asked;
``scheduler.background`` (APScheduler itself) is imported only by a process that starts it.
"""

from __future__ import annotations

import atexit
import os
import sys

from flask import Flask


def _should_start(app: Flask) -> bool:
    if app.config["SCHEDULER"] == "off":
        return False
    if "SCHEDULER_START" in app.config:  # tests and the worker process (python -m scheduler) say so explicitly
        return bool(app.config["SCHEDULER_START"])
    if app.config["SCHEDULER"] != "web" or app.testing:
        return False
    if os.environ.get("FLASK_RUN_FROM_CLI") == "true":
        # `flask run` serves; other commands (init-db, run-job, collect, ...) must not run other people's jobs.
        if "run" not in sys.argv[1:]:
            return False
        if app.debug and os.environ.get("WERKZEUG_RUN_MAIN") != "true":
            return False  # the reloader's watcher process
    return True


def init_app(app: Flask) -> None:
    """Create this process's scheduler and start it when this process should run jobs."""
    if not _should_start(app):
        return
    from scheduler.background import JobScheduler

    scheduler = JobScheduler(app)
    app.extensions["scheduler"] = scheduler
    scheduler.start()
    atexit.register(scheduler.stop)
