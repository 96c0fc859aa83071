"""Download candidate images into a folder: real images only, deduplicated, with a resumable manifest.

``download(candidates, out)`` writes:

* ``out/images/<sha256[:16]>.<ext>``: each kept image, byte for byte as served, named by its content, the extension
  following the decoded format (jpg, png, gif, webp, bmp, tiff);
* ``out/manifest.csv``: one row per candidate tried, appended as each finishes (see :mod:`seg.collector.manifest`);
* ``out/dataset/``: a Dataset of the kept images (no objects, no categories), each image's ``attributes`` holding
  its provenance; rebuilt from the manifest at the end of every run.

Candidates are pulled lazily, in the calling thread, only as download slots free up (a search may be driving a
browser to produce them); downloads run in a thread pool. Exact duplicates (same SHA-256) and near-duplicates
(perceptual hashes within ``near_duplicates`` bits) of an image kept earlier, in this run or an earlier one, get the
status ``duplicate``. A rerun on the same folder skips candidates whose ``image_url`` is done (see
:data:`seg.collector.manifest.FINAL_STATUSES`) and tries transient failures again. How URLs are fetched (address
checks, redirects, size cap, retries, rate) is in :mod:`seg.collector.fetch`.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from seg import __version__
from seg.collector.candidates import Candidate
from seg.errors import OptionError, OutputExistsError, SegError
from seg.progress import Progress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadOptions:
    """How :func:`download` fetches.

    Attributes:
        workers: concurrent downloads.
        timeout: seconds per request, to connect and between reads (a whole body gets three times this).
        retries: extra tries for transient failures (timeouts, connection errors, 429, 5xx), with exponential
            backoff and jitter, or after the server's Retry-After.
        max_bytes: size cap: refused from Content-Length up front, and streaming stops past it.
        allow_private: fetch from loopback, private, link-local and reserved addresses (refused by default, on the
            first URL and on every redirect hop).
        host_rate: at most this many requests per second to one host (0: unlimited).
        near_duplicates: largest Hamming distance between 64-bit perceptual hashes of two near-duplicate images;
            -1 turns near-duplicate removal off (exact duplicates are always removed).
        user_agent: the User-Agent header.

    Raises:
        OptionError: for a value out of range.
    """

    workers: int = 8
    timeout: float = 20.0
    retries: int = 3
    max_bytes: int = 50 * 2**20
    allow_private: bool = False
    host_rate: float = 4.0
    near_duplicates: int = 4
    user_agent: str = f"seg/{__version__} (+image dataset collector)"

    def __post_init__(self) -> None:
        checks = {
            "workers": self.workers >= 1,
            "timeout": self.timeout > 0,
            "retries": self.retries >= 0,
            "max_bytes": self.max_bytes >= 1,
            "host_rate": self.host_rate >= 0,
            "near_duplicates": -1 <= self.near_duplicates <= 64,
        }
        for name, ok in checks.items():
            if not ok:
                raise OptionError(f"download option {name} out of range", actual=getattr(self, name))


class DownloadError(SegError):
    """One candidate could not be kept; ``status`` is its manifest status (``not_image``, ``http_404``...)."""

    def __init__(self, status: str, message: str, *, retry_after: float | None = None, **fields) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(message, **fields)

    def __reduce__(self):
        return _rebuild_download_error, (self.status, self.message, self.retry_after)


def _rebuild_download_error(status: str, message: str, retry_after: float | None) -> DownloadError:
    return DownloadError(status, message, retry_after=retry_after)


def download(
    candidates: Iterable[Candidate | str],
    out: str | os.PathLike[str],
    *,
    options: DownloadOptions = DownloadOptions(),  # frozen: sharing the default is safe
    limit: int | None = None,
    overwrite: bool = False,
    progress: Progress = None,
) -> dict:
    """Fetch candidates into out/images/, one row per candidate in out/manifest.csv; returns a JSON-able report.

    Args:
        candidates: what to fetch (plain URL strings are taken as candidates without provenance). Pulled lazily in
            the calling thread, never more than ``options.workers`` ahead of the downloads.
        out: the output folder: new, empty, or one that an earlier run wrote (resumed).
        options: how to fetch.
        limit: stop once this many images are kept in ``out``, counting earlier runs; never keep more.
        overwrite: start afresh: remove the ``manifest.csv``, ``images/`` and ``dataset/`` of an earlier run first.
        progress: wraps an iterable that yields once per finished candidate (a progress bar).

    Returns:
        ``out``; ``kept``, ``duplicates``, ``thumbnails`` (kept from the thumbnail) and ``failed`` (count by status)
        in this run; ``skipped`` (done in earlier runs), ``repeated`` (an image URL already tried in this run);
        ``pulled`` (candidates taken); ``total`` (images in ``out``, all runs).

    Raises:
        OptionError: ``limit`` below 1.
        OutputExistsError: ``out`` is a file, or a non-empty folder without a manifest and ``overwrite`` is false.
        FormatError: ``out/manifest.csv`` is not a readable manifest.
    """
    from seg.collector.download_run import Run

    if limit is not None and limit < 1:
        raise OptionError("limit must be at least 1", expected=">= 1", actual=limit)
    out = _prepare(Path(out), overwrite)
    return Run(out, options, limit).execute(candidates, progress)


def _prepare(out: Path, overwrite: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise OutputExistsError("output is a file", path=out, expected="a folder")
    if out.is_dir() and not (out / "manifest.csv").is_file() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(
            "output folder exists and holds no download manifest; pass --overwrite to start afresh in it", path=out
        )
    if overwrite:
        (out / "manifest.csv").unlink(missing_ok=True)
        for name in ("images", "dataset"):
            if (out / name).is_dir():
                shutil.rmtree(out / name)
    (out / "images").mkdir(parents=True, exist_ok=True)
    for stale in (out / "images").glob(".*.tmp"):  # left by a run killed in the middle of writing an image
        stale.unlink(missing_ok=True)
    return out
