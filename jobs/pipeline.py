"""One job's work, without web, database or email: per class, collect candidates, download and check them;
drop the images found for two classes; zip the dataset.

Used by the scheduled job (jobs.runner) and by ``flask run-job``. Stages pass plain data: candidates from
``scraper``, images and failures from ``downloader``. Classes run one after another, each with its own collector
(and so its own browser, quit before the next starts) and its own download stage.
"""

from __future__ import annotations

import itertools
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from downloader import (
    LICENCE_FIELDS,
    Dataset,
    DatasetFailure,
    DatasetImage,
    DownloadOptions,
    DownloadResult,
    download_images,
    write_dataset,
)
from downloader.crossclass import Clash, find_clashes
from jobs.classes import ClassResult, class_folders, results_note
from jobs.files import folder_name
from jobs.links import human_size
from scraper import Candidate, Collector, EngineReport, EnginesUnavailable
from scraper.licences import credit_line

log = logging.getLogger(__name__)


class JobFailed(Exception):
    """The job cannot deliver anything; the message is written for the user."""


class JobInterrupted(Exception):
    """The process is shutting down: the job stopped at a safe point and can run again from the start."""


@dataclass
class Outcome:
    delivered: int
    candidates: int
    zip_path: Path
    zip_bytes: int
    note: str | None = None
    engines: list = field(default_factory=list)
    classes: list[ClassResult] = field(default_factory=list)
    wanted: int = 0
    thumbnails: list[Path] = field(default_factory=list)  # previews of the first images, a few of each class


@dataclass
class _Class:
    """One class's run: its download result, the candidates it came from, what went wrong."""

    query: str
    folder: str
    work: Path
    result: DownloadResult | None = None
    candidates: dict[str, Candidate] = field(default_factory=dict)  # image URL -> the candidate it came from
    unavailable: EnginesUnavailable | None = None
    dropped: set[int] = field(default_factory=set)  # indexes into result.images found for another class too

    @property
    def kept(self) -> list[int]:
        images = self.result.images if self.result else []
        return [i for i in range(len(images)) if i not in self.dropped]


class _Run:
    """The state one build_dataset call shares between its classes."""

    def __init__(self, count: int, total: int, options: DownloadOptions, config: Mapping, licence: str,
                 event: Callable[[str], None], on_candidates: Callable[[list[Candidate]], None],
                 progress: Callable[[int, int], None] | None, should_stop: Callable[[], bool] | None) -> None:
        self.count, self.total, self.options, self.config, self.licence = count, total, options, config, licence
        self.event, self.on_candidates, self.progress, self.should_stop = event, on_candidates, progress, should_stop
        self.collected = 0
        self.delivered_before = 0  # images delivered by the classes already done, for the progress report
        self.engines: list = []

    def stopping(self) -> bool:
        return self.should_stop is not None and self.should_stop()

    def download(self, one: _Class, several: bool) -> None:
        say = (lambda m: self.event(f"{one.folder}: {m}")) if several else self.event
        rounds = 0
        # No log from the collector itself: its rounds are summed up below, one line per engine.
        with Collector.from_config(one.query, self.config, licence=self.licence) as collector:
            def more(k: int) -> list[Candidate]:
                nonlocal rounds
                if self.stopping():
                    return []
                rounds += 1
                batch = collector.collect(k)
                self.collected += len(batch)
                one.candidates.update((c.image_url, c) for c in batch)
                self.on_candidates(batch)
                return batch

            def progress(delivered: int, want: int) -> None:
                if self.progress is not None:
                    self.progress(self.delivered_before + delivered, self.total)

            try:
                one.result = download_images(more, self.count, one.work, self.options, progress=progress,
                                             should_stop=self.should_stop)
            except EnginesUnavailable as exc:
                if not several:
                    for line in filter(None, map(engine_sentence, collector.reports)):
                        say(line)  # why each engine gave nothing
                    raise
                one.unavailable = exc
                say(f"no image links: {exc}")
            reports = collector.reports
            self.engines += [(r.engine, r.count, r.stopped) for r in reports]
        engines = [line for line in map(engine_sentence, reports) if line]
        if one.result is not None:
            kept = (f"{len(one.result.images)} images kept from {len(one.candidates)} image links"
                    f"{f' ({rounds} rounds of collecting)' if rounds > 1 else ''}, "
                    f"{len(one.result.failures)} refused (failures.csv says why)")
            # One class: a line per engine and one for the result; several: one line per class.
            for line in ([f"{kept}; " + "; ".join(engines)] if several else [*engines, kept]):
                say(line)
        self.delivered_before += len(one.result.images) if one.result else 0


def engine_sentence(report: EngineReport) -> str | None:
    """One engine's part of a class, in plain words, e.g. "bing gave 57 image links and had no more"."""
    stopped = report.stopped
    if stopped == "not used":
        return None
    if stopped.startswith("paused: enough"):
        why = "had more than we needed"
    elif stopped.startswith("paused: deadline"):
        why = "ran out of time"
    elif stopped.startswith("ran dry"):
        why = "had no more" + stopped[len("ran dry"):]
    elif stopped.startswith(("blocked", "failed")):
        kind, _, detail = stopped.partition(":")
        why = ("blocked us" if kind == "blocked" else "failed") + (f" ({detail.strip()})" if detail.strip() else "")
    else:
        why = f"stopped ({stopped})"
    return f"{report.engine} gave {report.count} image links and {why}"


def _clash_failures(runs: list[_Class], clashes: list[Clash]) -> list[DatasetFailure]:
    """Drop both images of every clash; list each, naming both classes."""
    failures = []
    for clash in clashes:
        a, b = runs[clash.first], runs[clash.second]
        assert a.result is not None and b.result is not None
        first, second = a.result.images[clash.index], b.result.images[clash.other_index]
        a.dropped.add(clash.index)
        b.dropped.add(clash.other_index)
        kind = "the same image" if clash.exact else f"a near duplicate (distance {clash.distance})"
        for mine, other, image, twin in ((a, b, first, second), (b, a, second, first)):
            failures.append(DatasetFailure(
                image.image_url,
                f"found for both “{mine.query}” and “{other.query}” ({kind} as {twin.image_url}): "
                "its label is ambiguous, so it is dropped from both",
                (mine.folder, other.folder)))
    return failures


def _reason(one: _Class, count: int) -> str | None:
    if one.unavailable is not None:
        return str(one.unavailable)
    assert one.result is not None
    parts = [one.result.shortfall_reason] if one.result.shortfall and one.result.shortfall_reason else []
    if one.dropped:
        parts.append(f"{len(one.dropped)} dropped as also found for another class")
    if not parts and len(one.kept) < count:
        parts.append(f"found {len(one.kept)} of {count} images")
    return "; ".join(parts) or None


def _images(one: _Class) -> list[DatasetImage]:
    assert one.result is not None
    images = []
    for index in one.kept:
        record = one.result.images[index]
        candidate = one.candidates.get(record.image_url)
        licence = {name: getattr(candidate, name, None) for name in LICENCE_FIELDS}
        credit = credit_line({**licence, "title": record.title, "page_url": record.page_url,
                              "image_url": record.image_url})
        images.append(DatasetImage(one.work / record.file, one.folder, one.query, record, licence, credit))
    return images


def build_dataset(
    queries: str | Sequence[str],
    count: int,
    options: Mapping,
    config: Mapping,
    work: Path,
    zip_file: Path,
    *,
    event: Callable[[str], None] = lambda message: None,
    on_candidates: Callable[[list[Candidate]], None] = lambda batch: None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    thumbnails: int = 0,
) -> Outcome:
    """Collect, download, validate and de-duplicate ``count`` images of each query (one class each) into
    ``zip_file``, with the split and layout of ``options``; keep previews of the first ``thumbnails`` images."""
    queries = [queries] if isinstance(queries, str) else list(queries)
    if not queries:
        raise ValueError("a job needs at least one query")
    shutil.rmtree(work, ignore_errors=True)  # a job run again starts from a clean folder
    work.mkdir(parents=True)
    zip_file.parent.mkdir(parents=True, exist_ok=True)
    download_options = DownloadOptions.from_config(
        config,
        formats=set(options.get("formats") or []) or None,
        min_width=int(options.get("min_width") or 0),
        min_height=int(options.get("min_height") or 0),
        thumbnails=thumbnails,
    )
    several = len(queries) > 1
    run = _Run(count, count * len(queries), download_options, config, str(options.get("licence") or "any"),
               event, on_candidates, progress, should_stop)
    folders = class_folders(queries)
    runs = [_Class(query, folder, work / f"class-{n}") for n, (query, folder) in enumerate(zip(queries, folders,
                                                                                             strict=True))]
    for one in runs:
        if run.stopping():
            raise JobInterrupted("the process is shutting down")
        if several:
            event(f"class {one.folder}/: “{one.query}”")
        run.download(one, several)

    if run.stopping():
        raise JobInterrupted("the process is shutting down")

    done = [one for one in runs if one.result is not None]
    if several and not done:
        raise next(one.unavailable for one in runs if one.unavailable is not None)
    clashes = find_clashes([one.result.images if one.result else [] for one in runs], download_options.near_distance)
    failures = _clash_failures(runs, clashes)
    if clashes:
        event(f"{len(failures)} images were found for two classes and dropped from both")
    results = [ClassResult(one.query, one.folder, count, len(one.kept), _reason(one, count)) for one in runs]
    delivered = sum(r.delivered for r in results)
    if not delivered:
        if not several:
            raise JobFailed(f"no images could be delivered for “{queries[0]}”: "
                            f"{results[0].reason or 'no usable image was found'}")
        raise JobFailed("no images could be delivered for any class: "
                        + "; ".join(f"“{r.query}”: {r.reason or 'no usable image was found'}" for r in results))

    images = [image for one in done for image in _images(one)]
    failures = [DatasetFailure(f.url, f.reason, (one.folder,)) for one in done
                for f in (one.result.failures if one.result else [])] + failures
    gifs = sum(1 for image in images if image.record.file.endswith(".gif"))
    layout = str(options.get("layout") or "imagefolder")
    if gifs and layout == "imagefolder":
        event(f"{gifs} images are GIFs, which torchvision's ImageFolder does not read (Hugging Face does)")
    root = folder_name(", ".join(queries), delivered)  # the zip unpacks into this one folder, never loose files
    size = write_dataset(Dataset(images, failures, split=options.get("split") or None, layout=layout), zip_file,
                         root=root)
    event(f"zip written: {delivered} images, {human_size(size)}, in the folder {root}/")
    return Outcome(delivered=delivered, candidates=run.collected, zip_path=zip_file, zip_bytes=size,
                   note=results_note(results), engines=run.engines, classes=results, wanted=run.total,
                   thumbnails=_previews(done, thumbnails))


def _previews(runs: list[_Class], most: int) -> list[Path]:
    """The first images' previews, taken from the classes in turn (a few of each)."""
    from downloader.stage import THUMBNAILS_DIR

    per_class = [sorted((one.work / THUMBNAILS_DIR).glob("*.jpg")) for one in runs]
    mixed = [path for row in itertools.zip_longest(*per_class) for path in row if path is not None]
    return mixed[:most]
