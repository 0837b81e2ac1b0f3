"""The Cassandra tables, and the parsing of what names them: the ``cassandra://`` URL, the settings, the replication."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from cassandra.cluster import Cluster, Session

DEFAULT_REPLICATION = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
DEFAULT_PORT = 9042
DDL_TIMEOUT = 60.0  # schema changes wait for every node to agree: give them longer than a query
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")
_REPLICATION_VALUE = re.compile(r"^[A-Za-z0-9_.]+$")

TABLES = (
    """CREATE TABLE IF NOT EXISTS {ks}.jobs (
        id text PRIMARY KEY, query text, email text, count int, run_at timestamp, timezone text, options text,
        status text, phase text, created_at timestamp, started_at timestamp, finished_at timestamp,
        heartbeat_at timestamp, claimed_by text, attempts int, candidates int, delivered int, zip_name text,
        zip_bytes bigint, error text, note text, mails_sent frozen<list<text>>, mail_pending text
    ) WITH gc_grace_seconds = 86400""",
    """CREATE TABLE IF NOT EXISTS {ks}.jobs_active (
        shard int, id text, added_at timestamp, PRIMARY KEY ((shard), id)
    ) WITH gc_grace_seconds = 86400""",
    """CREATE TABLE IF NOT EXISTS {ks}.jobs_finished (
        shard int, id text, status text, finished_at timestamp, zip_name text, PRIMARY KEY ((shard), id)
    ) WITH gc_grace_seconds = 86400""",
    """CREATE TABLE IF NOT EXISTS {ks}.jobs_pending_mail (
        shard int, id text, PRIMARY KEY ((shard), id)
    ) WITH gc_grace_seconds = 86400""",
    """CREATE TABLE IF NOT EXISTS {ks}.image_urls (
        job_id text, position int, seq timeuuid, url text, email text, page_url text, title text, source text,
        PRIMARY KEY ((job_id), position, seq)
    ) WITH gc_grace_seconds = 86400""",
    """CREATE TABLE IF NOT EXISTS {ks}.events (
        job_id text, at timestamp, seq timeuuid, level text, message text, PRIMARY KEY ((job_id), at, seq)
    ) WITH gc_grace_seconds = 86400""",
    # Caps and consent (db/cassandra/consent.py)
    """CREATE TABLE IF NOT EXISTS {ks}.admission (shard int PRIMARY KEY, holder text)""",
    """CREATE TABLE IF NOT EXISTS {ks}.confirmed_addresses (key text PRIMARY KEY, until timestamp)
        WITH gc_grace_seconds = 86400""",
    """CREATE TABLE IF NOT EXISTS {ks}.confirmation_mails (key text PRIMARY KEY, sent frozen<list<timestamp>>)
        WITH gc_grace_seconds = 86400""",
)


def all_tables() -> tuple[str, ...]:
    """The DDL of every table: the job tables above and the crawl state's (db/cassandra/crawl.py)."""
    from db.cassandra.crawl import TABLES as CRAWL_TABLES

    return TABLES + CRAWL_TABLES


def check_keyspace(keyspace: str) -> str:
    """Return ``keyspace`` if it is a plain name (it is written into CQL), else raise ValueError."""
    if not _NAME.match(keyspace):
        raise ValueError(f"keyspace name must be letters, digits and _: {keyspace!r}")
    return keyspace


def parse_replication(text: str) -> str:
    """Return a CQL replication map from a Python-literal dict, refusing anything but plain names and numbers."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"CASSANDRA_REPLICATION is not a map: {text!r}") from exc
    if not isinstance(value, dict) or "class" not in value:
        raise ValueError(f"CASSANDRA_REPLICATION needs a 'class': {text!r}")
    parts = []
    for key, item in value.items():
        key, item = str(key), str(item)
        if not (_REPLICATION_VALUE.match(key) and _REPLICATION_VALUE.match(item)):
            raise ValueError(f"CASSANDRA_REPLICATION has an unexpected entry {key!r}: {item!r}")
        parts.append(f"'{key}': '{item}'")
    return "{" + ", ".join(parts) + "}"


def parse_url(url: str) -> tuple[list[str], int, str]:
    """Split ``cassandra://host1,host2:9042/keyspace`` into contact points, port and keyspace."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "cassandra" or not sep:
        raise ValueError(f"not a cassandra:// URL: {url!r}")
    netloc, _, path = rest.partition("/")
    keyspace = check_keyspace(unquote(path.strip("/")) or "aid")
    netloc = netloc.rpartition("@")[2]  # credentials belong in CASSANDRA_USERNAME/PASSWORD, not the URL
    hosts, port = [], DEFAULT_PORT
    for item in filter(None, netloc.split(",")):
        host, colon, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        if colon:
            port = int(port_text)
        hosts.append(host)
    return hosts, port, keyspace


def store_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return the store's keyword arguments from the app's settings (CASSANDRA_*, RETENTION_MINUTES)."""
    return {
        "retention_seconds": int(config.get("RETENTION_MINUTES") or 30) * 60,
        "username": config.get("CASSANDRA_USERNAME"),
        "password": config.get("CASSANDRA_PASSWORD"),
        "secure_bundle": config.get("CASSANDRA_SECURE_BUNDLE"),
        "astra_token": config.get("CASSANDRA_ASTRA_TOKEN"),
        "replication": config.get("CASSANDRA_REPLICATION") or DEFAULT_REPLICATION,
        "local_dc": config.get("CASSANDRA_LOCAL_DC") or "datacenter1",
        "timeout": float(config.get("CASSANDRA_TIMEOUT_SECONDS") or 10.0),
    }


def create_tables(cluster: Cluster, session: Session, keyspace: str, replication: str, timeout: float) -> None:
    """Create the keyspace (when this cluster does not have it yet) and the tables; safe to run again."""
    timeout = max(timeout, DDL_TIMEOUT)
    if keyspace not in cluster.metadata.keyspaces:
        # Astra and managed clusters create keyspaces elsewhere; then the keyspace already exists here.
        session.execute(f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}", timeout=timeout)
    for ddl in all_tables():
        session.execute(ddl.format(ks=keyspace), timeout=timeout)
