"""`flask collect`: print the image URLs the engines give for a query, one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from . import licences
from .collector import Collector
from .errors import EnginesUnavailable

JSON_FIELDS = ("image_url", "page_url", "title", "source", "license", "license_url", "creator")


@click.command("collect")
@click.argument("query")
@click.option("-n", "--number", default=50, show_default=True, type=click.IntRange(1, 5000), help="How many.")
@click.option("--sources", default=None, help="Engines in order, e.g. bing,duckduckgo (default: IMAGE_SOURCES).")
@click.option(
    "--licence",
    default="any",
    show_default=True,
    type=click.Choice(list(licences.FILTERS), case_sensitive=False),
    help="Keep only images whose licence is open, allows commercial use or modification (licence-aware sources only).",
)
@with_appcontext
def collect(query: str, number: int, sources: str | None, licence: str) -> None:
    """Collect image URLs for QUERY: JSON lines on stdout, a line per engine on stderr (the collector's log)."""
    _logs_to_stderr()
    config = dict(current_app.config)
    if sources:
        config["IMAGE_SOURCES"] = [s for s in sources.split(",") if s.strip()]
    try:
        with Collector.from_config(query, config, licence=licence) as collector:
            for found in collector.collect(number):
                fields = {k: getattr(found, k) for k in JSON_FIELDS}
                click.echo(json.dumps(fields, ensure_ascii=False))
            # Each engine's line ("bing: 0 images, blocked: HTTP 403") is already in the log, on stderr: once.
    except EnginesUnavailable as exc:
        click.echo(f"error: {exc} ({exc.detail})", err=True)
        sys.exit(1)
    except ValueError as exc:  # an unknown engine name
        raise click.BadParameter(str(exc), param_hint="--sources") from exc


def _logs_to_stderr() -> None:
    """Stdout carries the JSON lines only: move log handlers that write to stdout over to stderr."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stdout:
            handler.setStream(sys.stderr)
