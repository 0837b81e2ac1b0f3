"""`flask fetch`: run the download stage alone on a file of image URLs."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from .candidates import ListedURL
from .options import FORMATS, DownloadOptions
from .package import write_reports


class _AboveBar(logging.Handler):
    """Write each log line above the progress bar, then draw the bar again under it."""

    def __init__(self, bar) -> None:
        super().__init__(logging.WARNING)
        self.bar = bar
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.bar.file.write("\r\x1b[2K" + self.format(record) + "\n")
        self.bar._last_line = None  # click skips drawing a line it thinks is already on screen
        self.bar.render_progress()


@contextmanager
def logs_above(bar) -> Iterator[None]:
    """While the bar is drawn, warnings go above it and nothing else of the log reaches the terminal."""
    root = logging.getLogger()
    handler, saved = _AboveBar(bar), (list(root.handlers), root.level)
    root.handlers, root.level = [handler], logging.WARNING
    try:
        yield
    finally:
        root.handlers, root.level = saved


def read_candidates(path: Path) -> list[ListedURL]:
    """Read one URL per line, or the JSON lines `flask collect` prints; skip blank lines and # comments."""
    found: list[ListedURL] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                fields = json.loads(line)
                found.append(
                    ListedURL(
                        image_url=fields["image_url"],
                        page_url=fields.get("page_url"),
                        title=fields.get("title"),
                        source=fields.get("source") or "file",
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise click.BadParameter(f"line {number} is not a candidate: {exc}", param_hint="URLS") from exc
        else:
            found.append(ListedURL(image_url=line))
    return found


@click.command("fetch")
@click.argument("urls", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("-n", "--number", type=click.IntRange(1), default=None, help="How many images (default: every URL).")
@click.option("--formats", default=None, help=f"Accepted formats, comma-separated ({','.join(sorted(FORMATS))}).")
@click.option("--min-width", type=click.IntRange(0), default=0, help="Smallest accepted width in pixels.")
@click.option("--min-height", type=click.IntRange(0), default=0, help="Smallest accepted height in pixels.")
@with_appcontext
def fetch(urls: Path, out_dir: Path, number: int | None, formats: str | None, min_width: int, min_height: int) -> None:
    """Download the images listed in URLS into OUT_DIR/images with manifest.csv and failures.csv."""
    candidates = read_candidates(urls)
    if not candidates:
        raise click.BadParameter("no URLs in the file", param_hint="URLS")
    try:
        options = DownloadOptions.from_config(
            current_app.config,
            formats=formats.split(",") if formats else None,
            min_width=min_width,
            min_height=min_height,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--formats") from exc
    want = number or len(candidates)
    from .checks import start_workers

    start_workers(options, want)  # they import Pillow and NumPy beside us, while we import the stage
    from .stage import download_images  # urllib3 and the stage: not for `fetch --help`

    queue = iter(candidates)

    def more(count: int) -> list[ListedURL]:
        return [candidate for _, candidate in zip(range(count), queue, strict=False)]

    out_dir.mkdir(parents=True, exist_ok=True)
    with click.progressbar(length=want, label="Downloading", show_pos=True, show_percent=True,
                           file=sys.stderr) as bar, logs_above(bar):

        def progress(delivered: int, _want: int) -> None:
            bar.update(delivered - bar.pos)

        result = download_images(more, want, out_dir, options, progress=progress)
        if 0 < bar.pos < want:  # the list ran out first: the work is done, so the bar ends full at what was found
            bar.length = bar.pos
            bar.render_progress()
    write_reports(result, out_dir)
    click.echo(f"{len(result.images)} of {want} images in {out_dir / 'images'}; {len(result.failures)} refused "
               "(failures.csv)")
    if result.shortfall_reason:
        click.echo(result.shortfall_reason)
