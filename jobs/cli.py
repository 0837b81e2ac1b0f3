"""`flask run-job`: a whole job at once in the terminal, without the web, the database or email."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from downloader import LAYOUTS, SPLITS
from downloader.cli import logs_above
from jobs.links import human_size
from jobs.pipeline import JobFailed, build_dataset
from jobs.validation import FORMATS, check_queries
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
    queries, error = check_queries(list(queries), int(config["MAX_QUERY_LENGTH"]), int(config["MAX_CLASSES"]))
    if error:
        raise click.BadParameter(error, param_hint="QUERIES")
    chosen = [f.strip().lower() for f in formats.split(",") if f.strip()] if formats else None
    if chosen and not set(chosen) <= set(FORMATS):
        raise click.BadParameter(f"image formats must be among {', '.join(FORMATS)}", param_hint="--formats")
    if sources:
        config["IMAGE_SOURCES"] = [s.strip().lower() for s in sources.split(",") if s.strip()]
    query = ", ".join(queries)
    output = output or Path(f"{'-'.join('-'.join(queries).split()) or 'images'}.zip")
    options = {"formats": chosen, "min_width": min_width, "min_height": min_height, "split": split,
               "layout": layout, "licence": licence.lower()}
    bar_stream = click.get_text_stream("stderr")  # type: ignore[operator]  # click 8.5's stubs type it as object
    links = 0
    with tempfile.TemporaryDirectory(prefix="aid-run-") as work, \
            click.progressbar(length=count * len(queries), label=query, show_pos=True, show_percent=True,
                              file=bar_stream, item_show_func=lambda phase: phase) as bar, logs_above(bar):
        def show(phase: str) -> None:  # the phase changes while the count stands still: draw it now
            bar.current_item = phase
            bar.render_progress()

        show("collecting image links")

        def collected(batch: list) -> None:
            nonlocal links
            links += len(batch)
            show(f"downloading, {links} image links")

        def progress(delivered: int, want: int) -> None:
            bar.update(delivered - bar.pos, f"downloading, {links} image links")

        try:
            outcome = build_dataset(queries, count, options, config, Path(work) / "job", output,
                                    on_candidates=collected, progress=progress)
        except (JobFailed, ScraperError) as exc:
            raise click.ClickException(str(exc)) from exc
        show("zip written")
    click.echo(f"{outcome.delivered} images in {output} ({human_size(outcome.zip_bytes)})")
    if len(outcome.classes) > 1:
        for result in outcome.classes:
            click.echo(f"{result.folder}/: {result.delivered} of {result.wanted} images")
    if outcome.note:
        click.echo(outcome.note, err=True)
