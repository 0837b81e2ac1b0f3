"""`flask crawl`: crawl one website for its images into OUT_DIR, resumable with --resume."""

from __future__ import annotations

import re
import signal
import sys
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from . import state as state_file
from .coordinator import Coordinator, Progress
from .options import RENDERS, SCOPES, CrawlOptions


def _widths(value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        widths = tuple(sorted({int(item) for item in value.split(",") if item.strip()}))
    except ValueError as exc:
        raise click.BadParameter("a comma-separated list of pixel widths, e.g. 600,1200",
                                 param_hint="--widths") from exc
    if not widths or any(not 16 <= w <= 10_000 for w in widths):
        raise click.BadParameter("each width must be between 16 and 10000", param_hint="--widths")
    return widths


def _patterns(values: tuple[str, ...], hint: str) -> tuple[re.Pattern[str], ...]:
    try:
        return tuple(re.compile(value) for value in values)
    except re.error as exc:
        raise click.BadParameter(f"not a regular expression: {exc}", param_hint=hint) from exc


class _Bar:
    """One line on stderr: rewritten in place on a terminal, a new line every few seconds otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if not self.tty and now - self.last < 5:
            return
        self.last = now
        line = (f"pages visited {progress.pages_visited}, queue {progress.queued}, "
                f"images kept {progress.images_kept} (pending {progress.images_pending})")
        sys.stderr.write(f"\r{line}\x1b[K" if self.tty else line + "\n")
        sys.stderr.flush()

    def end(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


@click.command("crawl")
@click.argument("start_url")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=__import__("pathlib").Path))
@click.option("-n", "--number", type=click.IntRange(1), default=1000, show_default=True, help="Most images to keep.")
@click.option("--max-pages", type=click.IntRange(1), default=10_000, show_default=True, help="Most pages to open.")
@click.option("--depth", type=click.IntRange(0), default=20, show_default=True, help="Most links from the start URL.")
@click.option("--render", type=click.Choice(RENDERS), default="http", show_default=True,
              help="http: requests and an HTML parser; browser: headless Chromium (scripts, lazy images).")
@click.option("--scope", type=click.Choice(SCOPES), default="host", show_default=True,
              help="host: the start URL's host; domain: its registrable domain.")
@click.option("--include", multiple=True, help="Follow only pages whose URL matches (regular expression).")
@click.option("--exclude", multiple=True, help="Never follow pages whose URL matches (regular expression).")
@click.option("--widths", default=None, help="Also keep each image at these widths, e.g. 600,1200.")
@click.option("--resume", is_flag=True, help="Continue the crawl whose state is in OUT_DIR.")
@with_appcontext
def crawl(start_url, out_dir, number, max_pages, depth, render, scope, include, exclude, widths, resume) -> None:
    """Crawl the website at START_URL and keep its images in OUT_DIR (images/, metadata/, manifest.csv)."""
    chosen = {"max_images": number, "max_pages": max_pages, "depth": depth, "render": render, "scope": scope,
              "include": _patterns(include, "--include"), "exclude": _patterns(exclude, "--exclude"),
              "widths": _widths(widths)}
    options = CrawlOptions.from_config(current_app.config, **chosen)
    if state_file.exists(out_dir) and not resume:
        raise click.UsageError(f"{out_dir} holds a crawl already: add --resume to continue it, or choose another "
                               "folder")
    if resume and not state_file.exists(out_dir):
        raise click.UsageError(f"--resume: no crawl to continue in {out_dir}")
    bar = _Bar()
    coordinator = Coordinator(start_url, out_dir, options, progress=bar)
    problem = coordinator.problem()
    if problem:
        coordinator.close()
        raise click.ClickException(problem)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = state_file.open_file(out_dir)
    try:
        started = state.get_meta("start_url")
        if resume and started and started != start_url:
            raise click.UsageError(f"--resume: the crawl in {out_dir} started at {started}, not {start_url}")
        # SIGTERM and Ctrl-C stop the crawl: the workers finish their page and quit their browsers, the state stays
        # resumable (Coordinator.interrupt; a second signal stops at once).
        previous = {signum: signal.signal(signum, lambda *_: coordinator.interrupt())
                    for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            summary = coordinator.run(state)
        except KeyboardInterrupt:
            bar.end()
            click.echo(f"interrupted; continue with: flask --app app crawl {start_url} {out_dir} --resume",
                       err=True)
            sys.exit(130)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        bar.end()
    finally:
        state.close()
    ended = {"images": f"stopped at {number} images", "pages": f"stopped at {max_pages} pages",
             None: "the site has no more pages in scope"}.get(summary.stopped, summary.stopped or "")
    click.echo(f"{summary.images_kept} images in {out_dir / 'images'} from {summary.pages_visited} pages "
               f"({summary.pages_failed} failed); {summary.images_refused} image URLs refused (failures.csv); {ended}")
