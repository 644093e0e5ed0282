"""Turn what the user typed into source specs, and open them as frame readers.

Accepted: a camera index (``0``) or device path (``/dev/video0``); a video or image file; a folder or
glob of media (natural order); ``rtsp://``, ``rtmp://``, ``http(s)://`` streams; ``demo``.
A folder or glob expands to one spec per video plus one image-sequence spec for its images.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlsplit, urlunsplit

from yolo_app.engine.types import SourceKind
from yolo_app.errors import UserError
from yolo_app.settings import StreamOptions

VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt"})
DEMO_PATH = Path(__file__).resolve().parents[2] / "assets" / "demo.mp4"


@dataclass(frozen=True)
class SourceSpec:
    """One input the engine can open: what it is, where it is, and the stem its outputs take."""

    kind: SourceKind
    uri: str  # as given: a stream's URL may hold its password (see ``shown``)
    name: str
    paths: tuple[Path, ...] = field(default=())  # the files of an IMAGES sequence
    stream: StreamOptions = StreamOptions()  # a network stream's transport and time-outs

    @property
    def shown(self) -> str:
        """The URI as messages, logs and records show it: never a password."""
        return redact(self.uri)


def redact(uri: str) -> str:
    """``rtsp://admin:secret@cam/1`` -> ``rtsp://admin:***@cam/1``; anything else unchanged."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def natural_key(path: Path) -> list:
    """Sort ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def parse_source(text: str, stream: StreamOptions = StreamOptions()) -> list[SourceSpec]:
    """Resolve a source string into specs, raising UserError with one clear line when it is unusable.
    ``stream``: how a network stream is opened and read."""
    text = text.strip()
    if not text:
        raise UserError("empty source: give a file, folder, glob, camera index, stream URL or 'demo'")
    if text == "demo":
        if not DEMO_PATH.is_file():
            raise UserError(f"the built-in demo clip is missing: {DEMO_PATH}")
        return [SourceSpec(SourceKind.DEMO, str(DEMO_PATH), "demo")]
    if text.isdigit():
        return [SourceSpec(SourceKind.CAMERA, text, f"camera{text}")]
    if text.startswith("/dev/video"):
        if not Path(text).exists():
            raise UserError(f"camera {text} does not exist")
        return [SourceSpec(SourceKind.CAMERA, text, Path(text).name)]
    scheme = urlparse(text).scheme.lower()
    if scheme in STREAM_SCHEMES:
        return [SourceSpec(SourceKind.STREAM, text, _stream_name(text), stream=stream)]
    if any(ch in text for ch in "*?[") and not Path(text).exists():
        matches = [Path(p) for p in glob.glob(text, recursive=True)]
        specs = _specs_for_files([p for p in matches if p.is_file()], label=_glob_name(text))
        if not specs:
            raise UserError(f"no images or videos match {text}")
        return specs
    path = Path(text).expanduser()
    if path.is_dir():
        specs = _specs_for_files([p for p in path.iterdir() if p.is_file()], label=path.resolve().name)
        if not specs:
            raise UserError(f"folder {path} has no images or videos "
                            f"(looked for {', '.join(sorted(VIDEO_EXTENSIONS | IMAGE_EXTENSIONS))})")
        return specs
    if not path.exists():
        raise UserError(f"no such file, folder, camera or stream: {text}")
    return [_spec_for_file(path)]


def _spec_for_file(path: Path) -> SourceSpec:
    if not os.access(path, os.R_OK):
        raise UserError(f"{path}: permission denied")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: file is empty (0 bytes)")
    ext = path.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return SourceSpec(SourceKind.VIDEO, str(path), path.stem)
    if ext in IMAGE_EXTENSIONS:
        return SourceSpec(SourceKind.IMAGE, str(path), path.stem, paths=(path,))
    raise UserError(f"{path}: not an image or video file (extension {ext or 'missing'}; "
                    f"videos: {' '.join(sorted(VIDEO_EXTENSIONS))}; images: {' '.join(sorted(IMAGE_EXTENSIONS))})")


def _specs_for_files(files: list[Path], label: str) -> list[SourceSpec]:
    """Videos become one spec each; the images together form one ordered sequence named ``label``."""
    files = sorted(files, key=natural_key)
    videos = [p for p in files if p.suffix.lower() in VIDEO_EXTENSIONS]
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    specs = [_spec_for_file(p) for p in videos]
    stems = [s.name for s in specs]
    specs = [  # two videos with one stem (a.mp4, a.mkv) must not write to the same outputs
        SourceSpec(s.kind, s.uri, Path(s.uri).name.replace(".", "_")) if stems.count(s.name) > 1 else s
        for s in specs
    ]
    if images:
        specs.append(SourceSpec(SourceKind.IMAGES, str(images[0].parent), label, paths=tuple(images)))
    return specs


def _stream_name(url: str) -> str:
    parsed = urlparse(url)
    host = parsed.hostname or "stream"
    raw = f"{host}_{parsed.port}{parsed.path}" if parsed.port else f"{host}{parsed.path}"
    return re.sub(r"[^A-Za-z0-9.-]+", "_", raw).strip("_") or "stream"


def _glob_name(pattern: str) -> str:
    literal = pattern.split("*")[0].split("?")[0].split("[")[0]
    base = Path(literal).name or Path(literal).parent.name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("_") or "images"
