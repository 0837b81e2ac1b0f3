"""The classes of a job: one query per line, a folder name per class, and the result per class.

A job's classes live in its options (``options["classes"]``, the list of queries) and its result per class in
its note, one line per class, so neither database needs a new column. ``Job.query`` holds the queries joined
by ", " for pages and emails.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from db import Job

SINGLE_FOLDER = "images"  # a one-class job keeps the folder it always had
# A class folder at the root must not look like a split folder to Hugging Face's imagefolder.
RESERVED = frozenset({"train", "training", "val", "valid", "validation", "dev", "test", "testing", "eval"})
MAX_SLUG = 60
_LINE = re.compile(r"^(\d+) of (\d+) images(?:; (.*))?$")


def distinct_queries(lines: Iterable[str]) -> list[str]:
    """The non-blank lines, whitespace collapsed, without repeats (ignoring case), in their order."""
    seen: set[str] = set()
    queries = []
    for line in lines:
        query = " ".join(str(line).split())
        if query and query.casefold() not in seen:
            seen.add(query.casefold())
            queries.append(query)
    return queries


def slug(query: str) -> str:
    """A readable ASCII folder name: accents dropped, lower case, words joined by '-' (may be empty)."""
    ascii_text = unicodedata.normalize("NFKD", query).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:MAX_SLUG].strip("-")


def class_folders(queries: Sequence[str]) -> list[str]:
    """One unique folder name per query; a single query keeps the folder ``images``."""
    if len(queries) == 1:
        return [SINGLE_FOLDER]
    folders: list[str] = []
    for number, query in enumerate(queries, start=1):
        base = slug(query) or f"class-{number}"
        if base in RESERVED:
            base = f"{base}-class"
        name, suffix = base, 2
        while name in folders:
            name, suffix = f"{base}-{suffix}", suffix + 1
        folders.append(name)
    return folders


def job_queries(query: str, options: Mapping) -> list[str]:
    """The queries of a stored job: its options' classes, or (jobs from before classes) its one query."""
    classes = options.get("classes") if options else None
    return [str(q) for q in classes] if classes else [query]


@dataclass(frozen=True)
class ClassResult:
    """How one class did: its query and folder, images wanted and delivered, and why it fell short."""

    query: str
    folder: str
    wanted: int
    delivered: int
    reason: str | None = None

    @property
    def shortfall(self) -> int:
        return max(0, self.wanted - self.delivered)

    def to_dict(self) -> dict:
        return {"query": self.query, "folder": self.folder, "wanted": self.wanted, "delivered": self.delivered,
                "shortfall": self.shortfall, "reason": self.reason}


def note_line(result: ClassResult) -> str:
    line = f"{result.folder}/ “{result.query}”: {result.delivered} of {result.wanted} images"
    return f"{line}; {result.reason}" if result.reason else line


def results_note(results: Sequence[ClassResult]) -> str | None:
    """The job's note: one class, its shortfall reason (as before classes); several, one line per class."""
    if len(results) == 1:
        return results[0].reason
    return "\n".join(note_line(result) for result in results)


def for_job(job: Job) -> list[ClassResult]:
    """The classes of ``job`` and, once it is done, what each delivered and why it fell short."""
    return job_results(job.query, job.count, job.options, job.delivered, job.note)


def job_results(query: str, count: int, options: Mapping, delivered: int, note: str | None) -> list[ClassResult]:
    """Read back the result per class of a stored job (from its note); before it ends, delivered counts are 0."""
    queries = job_queries(query, options)
    folders = class_folders(queries)
    if len(queries) == 1:
        return [ClassResult(queries[0], folders[0], count, delivered, note)]
    lines = (note or "").splitlines()
    results = []
    for query, folder in zip(queries, folders, strict=True):
        prefix = f"{folder}/ “{query}”: "
        match = next((_LINE.match(line[len(prefix):]) for line in lines if line.startswith(prefix)), None)
        if match:
            results.append(ClassResult(query, folder, int(match[2]), int(match[1]), match[3]))
        else:
            results.append(ClassResult(query, folder, count, 0, None))
    return results
