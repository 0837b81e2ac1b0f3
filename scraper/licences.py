"""The licence table: which licence codes are open, allow commercial use or changes, and how to credit an image.

Codes are Openverse's lower-case ones (``by``, ``by-sa``, ``by-nd``, ``by-nc``, ``by-nc-sa``, ``by-nc-nd``,
``cc0``, ``pdm``). A code outside the table (``gfdl``, anything a source may add) passes no filter but ``any``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

CODES = ("by", "by-sa", "by-nd", "by-nc", "by-nc-sa", "by-nc-nd", "cc0", "pdm")
OPEN = frozenset(CODES)
COMMERCIAL = frozenset({"cc0", "pdm", "by", "by-sa", "by-nd"})
MODIFICATION = frozenset({"cc0", "pdm", "by", "by-sa", "by-nc", "by-nc-sa"})
NO_CREDIT = frozenset({"cc0", "pdm"})  # no credit line is owed (it is still polite to give one)

# The licence filter of a job: `any` takes every source; the others take only the licence-aware sources.
FILTERS: dict[str, frozenset[str] | None] = {
    "any": None,
    "open": OPEN,
    "commercial": COMMERCIAL,
    "modification": MODIFICATION,
}

_CC_PATTERN = re.compile(r"^(?:cc[- ])?(by(?:[- ](?:nc|nd|sa))*)(?:[- ](\d+(?:\.\d+)?))?(?:[-\s,;].*)?$")
_PUBLIC_DOMAIN = re.compile(r"^(?:pd|pdm|public[- ]domain)(?:\b|[- ]).*$")


def check_filter(value: str | None) -> str:
    """The licence filter named by `value` (lower-cased; empty means `any`); ValueError for anything else."""
    name = (value or "any").strip().lower()
    if name not in FILTERS:
        raise ValueError(f"licence must be one of {', '.join(FILTERS)}, got {value!r}")
    return name


def passes(code: str | None, licence_filter: str) -> bool:
    """True when an image with licence `code` may be kept under `licence_filter`."""
    allowed = FILTERS[check_filter(licence_filter)]
    return allowed is None or (code or "") in allowed


def is_open(code: str | None) -> bool:
    return code in OPEN


def allows_commercial(code: str | None) -> bool:
    return code in COMMERCIAL


def allows_modification(code: str | None) -> bool:
    return code in MODIFICATION


def parse(text: str | None) -> tuple[str | None, str | None]:
    """(code, version) from a licence name as sources write it: "cc-by-sa-4.0", "CC BY 2.0", "CC0", "Public domain".

    A name outside the table gives its own lower-cased first word (e.g. ("gfdl", None)); nothing gives (None, None).
    """
    name = " ".join((text or "").strip().lower().split())
    if not name:
        return None, None
    if name.startswith(("cc0", "cc-zero", "cc zero")):
        return "cc0", "1.0"
    if _PUBLIC_DOMAIN.match(name):
        return "pdm", None
    match = _CC_PATTERN.match(name)
    if match and (name.startswith("cc") or name.startswith("by")):
        code = match.group(1).replace(" ", "-")
        if code in OPEN:
            return code, match.group(2)
    return re.split(r"[\s,;(]", name, maxsplit=1)[0], None


def deed_url(code: str | None, version: str | None) -> str | None:
    """The Creative Commons page of a licence, when the table knows it."""
    if code == "cc0":
        return "https://creativecommons.org/publicdomain/zero/1.0/"
    if code == "pdm":
        return "https://creativecommons.org/publicdomain/mark/1.0/"
    if code in OPEN and version:
        return f"https://creativecommons.org/licenses/{code}/{version}/"
    return None


def display_name(code: str | None, version: str | None = None) -> str | None:
    """How a licence is written in a credit line: "CC BY-SA 4.0", "CC0 1.0", "Public Domain Mark 1.0"."""
    if not code:
        return None
    if code == "pdm":
        return "Public Domain Mark 1.0"
    if code == "cc0":
        return "CC0 1.0"
    name = f"CC {code.upper()}" if code in OPEN else code.upper()
    return f"{name} {version}" if version else name


def credit_line(record: Mapping[str, Any]) -> str | None:
    """One line crediting an image, or None when none is owed (cc0, pdm) or its licence is unknown.

    `record` holds the Candidate fields (``Candidate.to_dict()`` or a metadata row): ``license``,
    ``license_version``, ``license_url``, ``creator``, ``attribution``, ``title``, ``page_url``, ``image_url``.
    The source's own attribution text is used when it gave one.
    """
    code = record.get("license")
    if not code or code in NO_CREDIT:
        return None
    if record.get("attribution"):
        return " ".join(str(record["attribution"]).split())
    title = record.get("title")
    work = f"“{title}”" if title else "This image"
    creator = record.get("creator")
    line = f"{work} by {creator}" if creator else work
    licence = display_name(code, record.get("license_version"))
    url = record.get("license_url") or deed_url(code, record.get("license_version"))
    line += f" is licensed under {licence}" + (f" ({url})" if url else "")
    where = record.get("page_url") or record.get("image_url")
    return f"{line}; source: {where}" if where else line
