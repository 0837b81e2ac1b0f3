"""`flask run-job`: a whole job at once in the terminal, without the web, the database or email."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from downloader import LAYOUTS, SPLITS
from jobs.classes import distinct_queries
from jobs.pipeline import JobFailed, build_dataset
from jobs.validation import FORMATS
from scraper import ScraperError
from scraper.licences import FILTERS


@click.command("run-job")
@click.argument("queries", nargs=-1, required=True)
@click.option("-n", "--count", default=50, show_default=True, type=click.IntRange(1), help="Images wanted per class.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Zip to write.")
@click.option("--sources", help="Engines in order, e.g. bing,duckduckgo (default: IMAGE_SOURCES).")
@click.option("--formats", help=f"Keep only these formats, e.g. jpeg,png (of {', '.join(FORMATS)}).")
@click.option("--min-width", default=0, type=click.IntRange(0), help="Smallest width kept, in pixels.")
@click.option("--min-height", default=0, type=click.IntRange(0), help="Smallest height kept, in pixels.")
@click.option("--split", type=click.Choice(list(SPLITS)), help="Put the images under train/, val/ (and test/).")
@click.option("--layout", type=click.Choice(list(LAYOUTS)), default="imagefolder", show_default=True,
              help="Class folders, or WebDataset tar shards.")
@click.option("--licence", type=click.Choice(list(FILTERS), case_sensitive=False), default="any", show_default=True,
              help="Keep only openly licensed images (any other value than `any` uses the licence-aware sources).")
@with_appcontext
def run_job(queries, count, output, sources, formats, min_width, min_height, split, layout, licence) -> None:
    """Collect, check and zip COUNT images of each QUERY (one class each), with a progress bar."""
    config = dict(current_app.config)
    queries = distinct_queries(queries)
    if not queries:
        raise click.BadParameter("give at least one search query", param_hint="QUERIES")
    if len(queries) > int(config["MAX_CLASSES"]):
        raise click.BadParameter(f"at most {config['MAX_CLASSES']} queries (MAX_CLASSES)", param_hint="QUERIES")
    if sources:
        config["IMAGE_SOURCES"] = [s.strip().lower() for s in sources.split(",") if s.strip()]
    query = ", ".join(queries)
    output = output or Path(f"{'-'.join('-'.join(queries).split()) or 'images'}.zip")
    options = {"formats": [f.strip().lower() for f in formats.split(",")] if formats else None,
               "min_width": min_width, "min_height": min_height, "split": split, "layout": layout,
               "licence": licence.lower()}
    logging.getLogger().setLevel(logging.WARNING)  # the bar is the progress report; keep the log quiet
    bar_stream = click.get_text_stream("stderr")  # type: ignore[operator]  # click 8.5's stubs type it as object
    with tempfile.TemporaryDirectory(prefix="aid-run-") as work, \
            click.progressbar(length=count * len(queries), label=query, show_pos=True, file=bar_stream) as bar:
        def progress(delivered: int, want: int) -> None:
            bar.update(delivered - bar.pos)

        try:
            outcome = build_dataset(queries, count, options, config, Path(work) / "job", output, progress=progress)
        except (JobFailed, ScraperError) as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"{outcome.delivered} images in {output} ({outcome.zip_bytes} bytes)")
    if len(outcome.classes) > 1:
        for result in outcome.classes:
            click.echo(f"{result.folder}/: {result.delivered} of {result.wanted} images")
    if outcome.note:
        click.echo(outcome.note, err=True)
