"""gunicorn settings for Heroku and any single-host deploy; each line says why."""

import os

from gunicorn.glogging import Logger

from app import redact_secret_paths

# Heroku tells the dyno which port to listen on (all interfaces); HOST=127.0.0.1 keeps a local run private.
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"
# One worker process: with SCHEDULER=web the job scheduler lives in it, and one scheduler per dyno is enough
# (jobs are claimed in the database, so more would still run each job once, just with more browsers).
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# Threads serve the pages while jobs run in the scheduler's own threads.
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Heroku's router gives up after 30 s: a request slower than 25 s is killed first, with a log line.
timeout = 25
# On SIGTERM Heroku waits 30 s before SIGKILL: finish requests (and let jobs reach a safe point) within that.
graceful_timeout = 25
# Logs go to stdout, where Heroku collects them.
accesslog = "-"
errorlog = "-"


class AccessLogWithoutSecrets(Logger):
    """The access log, with download and confirmation tokens cut out of every field (they work as passwords)."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms.pop("{authorization}i", None)  # an API key, should a format ever name the header
        return {key: redact_secret_paths(value) if isinstance(value, str) else value for key, value in atoms.items()}


logger_class = AccessLogWithoutSecrets
# No preload: the app (and its database session, created lazily) is built after the fork, in the worker.
preload_app = False


def worker_exit(server, worker):
    """On shutdown, let running jobs reach a safe point and go back to the queue (within graceful_timeout)."""
    app = getattr(worker, "wsgi", None)
    scheduler = getattr(app, "extensions", {}).get("scheduler") if app is not None else None
    if scheduler is not None:
        scheduler.stop()
