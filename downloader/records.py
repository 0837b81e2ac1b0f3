"""What the download stage hands back: the images delivered, the URLs refused, and the shortfall explained."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ImageInfo:
    """What a checked file's bytes really are (``validate.inspect`` finds it out; here, away from Pillow and NumPy,
    so that a process whose files are checked by workers never imports them)."""

    format: str  # jpeg, png, webp, gif
    ext: str
    width: int
    height: int
    phash: int  # 64-bit perceptual hash
    thumbnail: bytes | None = None  # a small JPEG, when options.thumbnails asks for previews


@dataclass
class ImageRecord:
    """One delivered image and where it came from; ``file`` is relative to the output folder."""

    file: str
    image_url: str
    page_url: str | None
    title: str | None
    source: str
    width: int
    height: int
    bytes: int
    sha256: str
    phash: str  # 16 hex digits


@dataclass
class Failure:
    """A candidate URL that was refused, and why in plain words; ``kind`` groups reasons for the summary."""

    url: str
    reason: str
    kind: str = "broken"


@dataclass
class DownloadResult:
    """What the stage delivered, what it refused, and the shortfall explained."""

    want: int
    images: list[ImageRecord] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    shortfall: int = 0
    shortfall_reason: str | None = None
    candidates_seen: int = 0
    stopped: str | None = None  # "deadline" or "cancelled" when the stage did not run to its end
