"""`flask run-job`: a whole job at once in the terminal, without the web, the database or email."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from jobs.pipeline import JobFailed, build_dataset
from jobs.validation import FORMATS
from scraper import ScraperError


@click.command("run-job")
@click.argument("query")
@click.option("-n", "--count", default=50, show_default=True, type=click.IntRange(1), help="Images wanted.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Zip to write.")
@click.option("--sources", help="Engines in order, e.g. bing,duckduckgo (default: IMAGE_SOURCES).")
@click.option("--formats", help=f"Keep only these formats, e.g. jpeg,png (of {', '.join(FORMATS)}).")
@click.option("--min-width", default=0, type=click.IntRange(0), help="Smallest width kept, in pixels.")
@click.option("--min-height", default=0, type=click.IntRange(0), help="Smallest height kept, in pixels.")
@with_appcontext
def run_job(query, count, output, sources, formats, min_width, min_height) -> None:
    """Collect, check and zip COUNT images of QUERY, with a progress bar."""
    config = dict(current_app.config)
    if sources:
        config["IMAGE_SOURCES"] = [s.strip().lower() for s in sources.split(",") if s.strip()]
    output = output or Path(f"{'-'.join(query.split()) or 'images'}.zip")
    options = {"formats": [f.strip().lower() for f in formats.split(",")] if formats else None,
               "min_width": min_width, "min_height": min_height}
    logging.getLogger().setLevel(logging.WARNING)  # the bar is the progress report; keep the log quiet
    bar_stream = click.get_text_stream("stderr")
    with tempfile.TemporaryDirectory(prefix="aid-run-") as work, \
            click.progressbar(length=count, label=query, show_pos=True, file=bar_stream) as bar:
        def progress(delivered: int, want: int) -> None:
            bar.update(delivered - bar.pos)

        try:
            outcome = build_dataset(query, count, options, config, Path(work) / "job", output, progress=progress)
        except (JobFailed, ScraperError) as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"{outcome.delivered} images in {output} ({outcome.zip_bytes} bytes)")
    if outcome.note:
        click.echo(outcome.note, err=True)
