"""Read every setting of the app from environment variables, in one place.

Each setting has a name (the environment variable), a type, a default and a line of help; the README's
configuration table lists the same names (a test keeps the two in step). ``load()`` returns a plain dict
that ``create_app`` puts into ``app.config``; nothing is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected on/off, got {value!r}")


def _list(value: str) -> list[str]:
    return [item.strip().lower() for item in value.split(",") if item.strip()]


def _keys(value: str) -> list[str]:
    """A comma-separated list whose items keep their case (secrets)."""
    return [item.strip() for item in value.split(",") if item.strip()]


def _workers(value: str) -> int | str:
    """``auto`` or a whole number of at least 0."""
    value = value.strip().lower()
    if value == "auto":
        return value
    if not value.isdigit():
        raise ValueError(f"expected auto or a whole number, got {value!r}")
    return int(value)


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        value = value.strip().lower()
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    return parse


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[str], Any]
    help: str


SETTINGS: tuple[Setting, ...] = (
    # The web app
    Setting("SECRET_KEY", None, str, "Signs sessions, CSRF tokens and download links; the same in every process. Required with SCHEDULER=worker or an https PUBLIC_URL (the app refuses to start without it); unset in local development: a random key per process."),
    Setting("PUBLIC_URL", "http://127.0.0.1:5000", str, "Base of the links in emails, e.g. https://aid.example.com."),
    Setting("DATABASE_URL", None, str, "sqlite:///path/to/file.db or cassandra://host1,host2:9042/keyspace. Default: SQLite in the instance folder."),
    Setting("DATA_DIR", None, str, "Where job folders and zips live. Default: instance/data."),
    Setting("MAX_IMAGES", 500, int, "Largest number of images one job may ask for."),
    Setting("MAX_QUERY_LENGTH", 200, int, "Longest search query accepted, in characters (each line, when a job has several classes)."),
    Setting("MAX_CLASSES", 10, int, "Most classes (distinct queries, one a line) one job may have; `images` is the number per class."),
    Setting("LINK_TTL_MINUTES", 30.0, float, "How long an emailed download link works (fractions allowed: 0.5 is 30 s)."),
    Setting("RETENTION_MINUTES", 30, int, "How long after a job ends its zip, folder and personal data are kept."),
    Setting("CLEANUP_INTERVAL_SECONDS", 60, int, "How often retention cleanup, stale-job recovery and mail retries run."),
    Setting("SCHEDULER", "web", _choice("web", "worker", "off"), "web: this process runs due jobs; worker: only `python -m scheduler` runs them; off: none."),
    Setting("JOB_WORKERS", 2, int, "How many jobs one process runs at the same time."),
    Setting("POLL_INTERVAL_SECONDS", 10, int, "How often a process looks for queued jobs submitted through other processes."),
    Setting("SHUTDOWN_GRACE_SECONDS", 20, int, "On SIGTERM, how long running jobs get to stop at a safe point and go back to the queue (Heroku kills after 30 s)."),
    Setting("STALE_JOB_SECONDS", 120, int, "A running job whose heartbeat is older than this is taken as interrupted and run again."),
    # Consent and caps (issue 9)
    Setting("EMAIL_CONFIRMATION", "auto", _choice("auto", "on", "off"), "on: the first job for an address waits until its owner presses the button in a confirmation email; auto: on when SMTP_HOST is set; off: never."),
    Setting("CONFIRMATION_HOURS", 24.0, float, "Unconfirmed jobs, and their data, are deleted this long after they were submitted (fractions allowed)."),
    Setting("CONFIRMED_DAYS", 30.0, float, "How long a confirmed address needs no new confirmation; kept only as a keyed hash (HMAC with SECRET_KEY)."),
    Setting("MAX_ACTIVE_JOBS_PER_EMAIL", 3, int, "Most jobs one address may have unconfirmed, queued or running at once."),
    Setting("MAX_QUEUED_JOBS", 200, int, "Most jobs waiting (unconfirmed or queued) in all; further submissions are refused until some run."),
    Setting("MAX_SCHEDULE_DAYS", 30, int, "How many days ahead a job may be scheduled."),
    Setting("LOG_LEVEL", "INFO", str, "Logging level of the app (DEBUG, INFO, WARNING, ...)."),
    # Requests from strangers (issue 9)
    Setting("MAX_CONTENT_LENGTH", 64 * 1024, int, "Largest request body accepted, in bytes (a job is small); a larger one answers 413."),
    Setting("RATE_LIMIT_SUBMIT", "5/minute;20/hour", str, "Submissions that create a job, per client address (form and API), e.g. 5/minute;20/hour; more answer 429 with Retry-After."),
    Setting("RATE_LIMIT_API_KEY", "60/minute", str, "Submissions per API key, instead of the per-address limit."),
    Setting("RATE_LIMIT_STORAGE_URL", "memory://", str, "Where the limits count: memory:// (one process) or redis://host:port/0 (shared by several processes or dynos)."),
    Setting("TRUSTED_PROXIES", 0, int, "How many proxies in front of the app set X-Forwarded-For/-Proto (Heroku: 1); limits then apply to the real client address."),
    Setting("API_KEYS", [], _keys, "Comma-separated keys for programs: `Authorization: Bearer <key>` skips the confirmation step and has RATE_LIMIT_API_KEY; a wrong key answers 401."),
    # Image search
    Setting("IMAGE_SOURCES", "bing,duckduckgo,google", _list, "Image sources to use, in order of preference: bing, duckduckgo, google (search engines), urls (the list in URL_LIST), openverse and wikimedia (openly licensed, with each image's licence)."),
    Setting("BING_URL", "https://www.bing.com", str, "Base URL of Bing; tests point it at a local fixture engine."),
    Setting("DUCKDUCKGO_URL", "https://duckduckgo.com", str, "Base URL of DuckDuckGo."),
    Setting("GOOGLE_URL", "https://www.google.com", str, "Base URL of Google."),
    Setting("URL_LIST", None, str, "For the `urls` image source: a text file or an http(s) URL with one image URL a line (# starts a comment)."),
    Setting("OPENVERSE_URL", "https://api.openverse.org", str, "Base URL of the Openverse API (the `openverse` source: openly licensed images, no browser)."),
    Setting("OPENVERSE_CLIENT_ID", None, str, "Openverse OAuth client id (from POST /v1/auth_tokens/register/). Unset: anonymous, at most 20 results a page and 20 pages."),
    Setting("OPENVERSE_CLIENT_SECRET", None, str, "Openverse OAuth client secret, used with OPENVERSE_CLIENT_ID."),
    Setting("WIKIMEDIA_URL", "https://commons.wikimedia.org", str, "Base URL of Wikimedia Commons (the `wikimedia` source: its Action API, no browser)."),
    Setting("CONTACT_EMAIL", None, str, "Contact sent in the User-Agent of API requests and of image downloads, as Wikimedia's policy asks of every request to its servers; the `wikimedia` source is not used without it."),
    Setting("SAFE_SEARCH", True, _bool, "SafeSearch on the engines; set off to disable."),
    Setting("CHROME_BIN", "/usr/bin/chromium", str, "Chromium executable."),
    Setting("CHROMEDRIVER", "/usr/bin/chromedriver", str, "chromedriver executable (never downloaded at run time)."),
    Setting("COLLECT_TIMEOUT_SECONDS", 120, int, "Deadline for collecting image URLs from all engines in one round."),
    # Downloads
    Setting("ALLOW_PRIVATE_URLS", False, _bool, "Allow image URLs that resolve to loopback, private, link-local or reserved addresses (tests only)."),
    Setting("DOWNLOAD_THREADS", 64, int, "Image downloads of one job in flight at once (one event loop runs them; the per-host limits below still apply)."),
    Setting("DOWNLOAD_PER_HOST", 4, int, "Concurrent downloads from one host to start with; the limit grows while the host answers quickly and halves on signs of overload."),
    Setting("DOWNLOAD_PER_HOST_MAX", 16, int, "The most concurrent downloads from one host the adaptive limit may reach (never below DOWNLOAD_PER_HOST)."),
    Setting("DOWNLOAD_CHECK_WORKERS", "auto", _workers, "Processes that decode and hash downloaded images, so the download loop only fetches: a number, 0 (threads of the job's process check, as for jobs of under 50 images), or auto (one per CPU, at most 4; 34–38 MB each after 100 checks here)."),
    Setting("DOWNLOAD_CONNECT_TIMEOUT", 5.0, float, "Seconds to connect to an image host."),
    Setting("DOWNLOAD_READ_TIMEOUT", 15.0, float, "Seconds to wait for each chunk of an image."),
    Setting("DOWNLOAD_DEADLINE_SECONDS", 300, int, "Deadline for the whole download stage of one job."),
    Setting("MAX_IMAGE_BYTES", 20 * 1024 * 1024, int, "Largest image accepted, enforced while streaming."),
    Setting("NEAR_DUPLICATE_DISTANCE", 6, int, "Images whose perceptual hashes differ in at most this many of 64 bits are near duplicates; the larger is kept."),
    Setting("MIN_IMAGE_SIDE", 32, int, "Images narrower or shorter than this many pixels are refused."),
    Setting("RESPECT_NOAI", True, _bool, "Refuse images served with X-Robots-Tag: noai or noimageai (the site asks that they not be used for AI); off keeps them."),
    Setting("GUARD_TRUSTED_HOSTS", [], _list, "Operator only: comma-separated host:port (or host) names exempt from the address guard, e.g. an intranet mirror or a test site on 127.0.0.1:8000; never taken from user input."),
    # Website crawls (flask crawl, and crawl jobs from the form and the API)
    Setting("CRAWL_PER_HOST", 2, int, "Requests to one host at a time while crawling (pages; image downloads have the same cap)."),
    Setting("CRAWL_DELAY_SECONDS", 0.25, float, "Least time between two page requests to one host; a longer robots.txt Crawl-delay wins."),
    Setting("CRAWL_USER_AGENT", "AdvancedImageDownloader-crawler/1.0", str, "User-Agent of the crawler's requests; robots.txt rules for this name apply."),
    Setting("CRAWL_MAX_URL_LENGTH", 2000, int, "Longer URLs are not followed (ends traps of ever-longer query strings)."),
    Setting("CRAWL_BROWSER_WORKERS", 2, int, "Headless Chromium browsers (discovery workers) of one crawl with --render browser."),
    Setting("MAX_CRAWL_IMAGES", 2000, int, "Largest number of images one web or API crawl job may ask for."),
    Setting("MAX_CRAWL_PAGES", 5000, int, "Most pages one web or API crawl job opens (its max-pages may ask for fewer)."),
    # Mail
    Setting("SMTP_HOST", None, str, "SMTP server. Unset: mail is written as .eml files to MAIL_OUTBOX and logged."),
    Setting("SMTP_PORT", 587, int, "SMTP port."),
    Setting("SMTP_USERNAME", None, str, "SMTP login, when the server wants one."),
    Setting("SMTP_PASSWORD", None, str, "SMTP password."),
    Setting("SMTP_SECURITY", "starttls", _choice("none", "starttls", "ssl"), "none, starttls or ssl."),
    Setting("SMTP_TIMEOUT", 10.0, float, "Seconds before an SMTP connection or command gives up."),
    Setting("MAIL_FROM", "Advanced Image Downloader <no-reply@localhost>", str, "Sender of every email."),
    Setting("MAIL_OUTBOX", None, str, "Folder for .eml files when SMTP_HOST is unset. Default: instance/outbox."),
    Setting("MAIL_RETRIES", 3, int, "Attempts per email before it is left for the periodic retry."),
    Setting("MAIL_BACKOFF_SECONDS", 0.5, float, "Wait before the second attempt of an email; doubled for each further attempt."),
    # Cassandra (used when DATABASE_URL is cassandra://host1,host2:9042/keyspace)
    Setting("CASSANDRA_USERNAME", None, str, "Cassandra login (PasswordAuthenticator); unset: no authentication."),
    Setting("CASSANDRA_PASSWORD", None, str, "Cassandra password."),
    Setting("CASSANDRA_SECURE_BUNDLE", None, str, "Path of a DataStax Astra secure connect bundle (.zip); the URL then needs no hosts: cassandra:///keyspace."),
    Setting("CASSANDRA_ASTRA_TOKEN", None, str, "Astra application token (AstraCS:...), used with CASSANDRA_SECURE_BUNDLE."),
    Setting("CASSANDRA_REPLICATION", "{'class': 'SimpleStrategy', 'replication_factor': 1}", str, "Replication of the keyspace when init-db creates it, e.g. {'class': 'NetworkTopologyStrategy', 'dc1': 3}."),
    Setting("CASSANDRA_LOCAL_DC", "datacenter1", str, "The client's local datacenter for load balancing, LOCAL_QUORUM and LOCAL_SERIAL."),
    Setting("CASSANDRA_TIMEOUT_SECONDS", 10.0, float, "Seconds before a Cassandra request gives up (the web layer then answers 503)."),
    # Storage
    Setting("STORAGE_URL", None, str, "Where finished zips live: unset (DATA_DIR/zips), file:///abs/dir, or s3://bucket/prefix (needed with several dynos). S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."),
    Setting("S3_ENDPOINT_URL", None, str, "Endpoint of an S3-compatible service (MinIO, R2, ...) or of the test server. Unset: AWS S3."),
    Setting("AWS_REGION", "us-east-1", str, "Region of the S3 bucket."),
    Setting("S3_PRESIGN_SECONDS", 300, int, "Lifetime of the presigned S3 URL handed out on each click of the download link."),
)


def load(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return every setting, parsed from ``environ`` (os.environ by default), with defaults filled in."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.name)
        if raw is None or raw == "":
            values[setting.name] = setting.default
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            raise ValueError(f"setting {setting.name}: {exc}") from exc
    return values
