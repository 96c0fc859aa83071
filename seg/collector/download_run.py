"""One run of :func:`seg.collector.download.download`: the pull/submit/record loop, dedup state and the Dataset.

The calling thread pulls candidates, records results (dedup, image files, manifest rows) and owns all the state; the
worker threads only fetch and verify (:func:`fetch_candidate`), each with its own ``requests`` Session.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import requests

from seg.collector.candidates import Candidate
from seg.collector.download import DownloadError, DownloadOptions
from seg.collector.fetch import HostRateLimiter, fetch, make_session
from seg.collector.image_check import ImageInfo, inspect_image
from seg.collector.image_hash import nearest
from seg.collector.manifest import clip_text, is_final, open_manifest
from seg.errors import FormatError, OptionError
from seg.outputs import atomic_file
from seg.progress import Progress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a worker made of one candidate: ``ok`` with the image, or the failure's status and message."""

    status: str
    error: str = ""
    source: str = "full"
    data: bytes = b""
    info: ImageInfo | None = None


class Sessions:
    """One ``requests`` Session per worker thread, all closed at the end."""

    def __init__(self, options: DownloadOptions) -> None:
        self.options = options
        self._local = threading.local()
        self._all: list[requests.Session] = []
        self._lock = threading.Lock()

    def get(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = make_session(self.options)
            with self._lock:
                self._all.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._all:
                session.close()


def _fetch_image(url: str, session: requests.Session, options: DownloadOptions, limiter: HostRateLimiter):
    try:
        data = fetch(session, url, options, limiter)
        return data, inspect_image(data)
    except DownloadError:
        raise
    except Exception as e:  # a bug or an odd library failure must not stop the run
        logger.debug("unexpected failure on %s", url, exc_info=True)
        first_line = (str(e).splitlines() or [""])[0][:200]
        raise DownloadError("error", f"unexpected {type(e).__name__}: {first_line}") from e


def fetch_candidate(candidate: Candidate, sessions: Sessions, limiter: HostRateLimiter) -> Outcome:
    """Fetch and verify a candidate's image, falling back to its thumbnail when the full-size image fails."""
    session = sessions.get()
    try:
        data, info = _fetch_image(candidate.image_url, session, sessions.options, limiter)
        return Outcome("ok", data=data, info=info)
    except DownloadError as e:
        first = e
    thumbnail = candidate.thumbnail_url
    if thumbnail and thumbnail != candidate.image_url:
        try:
            data, info = _fetch_image(thumbnail, session, sessions.options, limiter)
            return Outcome("ok", f"full image: {first.status}: {first.message}", "thumbnail", data, info)
        except DownloadError as e:
            return Outcome(first.status, f"{first.message}; thumbnail: {e.status}: {e.message}")
    return Outcome(first.status, first.message)


class Run:
    """The state of one download run over ``out`` (already prepared by :func:`seg.collector.download._prepare`)."""

    def __init__(self, out: Path, options: DownloadOptions, limit: int | None) -> None:
        self.out, self.options, self.limit = out, options, limit
        self.done: set[str] = set()
        self.tried: set[str] = set()
        self.kept_rows: list[dict[str, str]] = []
        self.kept_by_sha: dict[str, str] = {}
        self.kept_files: list[str] = []
        self.hashes = np.empty(0, np.uint64)
        self.counts: Counter[str] = Counter()
        self.pulled = self.skipped = self.repeated = 0

    # -- state from earlier runs ---------------------------------------------------------------------------------

    def _resume(self, rows: list[dict[str, str]]) -> None:
        last = {row.get("image_url", ""): row.get("status", "") for row in rows}
        self.done = {url for url, status in last.items() if is_final(status)}
        for row in rows:
            if row.get("status") == "ok" and row.get("file") and row.get("file") not in self.kept_files:
                try:
                    phash = int(row.get("phash") or "0", 16)
                except ValueError as e:
                    raise FormatError(
                        "bad phash in manifest", path=self.out / "manifest.csv", item_id=row["file"]
                    ) from e
                self._keep(row, row.get("sha256", ""), phash, row["file"])

    def _keep(self, row: dict[str, str], sha256: str, phash: int, file: str) -> None:
        self.kept_rows.append(row)
        self.kept_by_sha[sha256] = file
        self.kept_files.append(file)
        self.hashes = np.append(self.hashes, np.uint64(phash))

    # -- the loop ------------------------------------------------------------------------------------------------

    def execute(self, candidates: Iterable[Candidate | str], progress: Progress) -> dict:
        writer, rows = open_manifest(self.out / "manifest.csv")
        self.writer = writer
        pool = ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="seg-download")
        sessions = Sessions(self.options)
        limiter = HostRateLimiter(self.options.host_rate)
        finished = False
        try:
            self._resume(rows)
            total_before = len(self.kept_files)
            events = self._events(iter(candidates), pool, sessions, limiter)
            for _ in events if progress is None else progress(events):
                pass
            finished = True
        finally:
            # on an interrupt, drop what is queued and leave running fetches to end on their own timeouts
            pool.shutdown(wait=finished, cancel_futures=True)
            writer.close()
            if finished:
                sessions.close()
        self._save_dataset()
        report = {
            "out": str(self.out),
            "kept": len(self.kept_files) - total_before,
            "duplicates": self.counts.pop("duplicate", 0),
            "thumbnails": self.counts.pop("thumbnail", 0),
            "failed": dict(sorted((k, v) for k, v in self.counts.items() if k != "ok")),
            "skipped": self.skipped,
            "repeated": self.repeated,
            "pulled": self.pulled,
            "total": len(self.kept_files),
        }
        logger.info("%s", report)
        return report

    def _room(self, in_flight: int) -> bool:
        return in_flight < self.options.workers and (
            self.limit is None or len(self.kept_files) + in_flight < self.limit
        )

    def _events(
        self, iterator: Iterator, pool: ThreadPoolExecutor, sessions: Sessions, limiter: HostRateLimiter
    ) -> Iterator[Candidate]:
        pending: dict[Future, tuple[int, Candidate]] = {}
        exhausted = False
        while True:
            while not exhausted and self._room(len(pending)):
                try:
                    item = next(iterator)
                except StopIteration:
                    exhausted = True
                    break
                self.pulled += 1
                candidate = _as_candidate(item)
                key = clip_text(candidate.image_url)
                if key in self.done:
                    self.skipped += 1
                elif key in self.tried:
                    self.repeated += 1
                else:
                    self.tried.add(key)
                    future = pool.submit(fetch_candidate, candidate, sessions, limiter)
                    pending[future] = (self.pulled, candidate)
            if not pending:
                return
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(ready, key=lambda f: pending[f][0]):
                _, candidate = pending.pop(future)
                self._record(candidate, future.result())
                yield candidate

    # -- results -------------------------------------------------------------------------------------------------

    def _record(self, candidate: Candidate, outcome: Outcome) -> None:
        row = {
            "query": candidate.query,
            "engine": candidate.engine,
            "rank": candidate.rank,
            "page_url": candidate.page_url,
            "image_url": candidate.image_url,
            "thumbnail_url": candidate.thumbnail_url,
            "title": candidate.title,
            "licence": candidate.licence,
            "source": outcome.source,
            "status": outcome.status,
            "error": outcome.error,
            "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        info = outcome.info
        if outcome.status == "ok" and info is not None:
            row.update(
                sha256=info.sha256,
                phash=f"{info.phash:016x}",
                width=info.width,
                height=info.height,
                bytes=len(outcome.data),
                format=info.format,
            )
            duplicate_of, note = self._duplicate_of(info)
            if duplicate_of:
                row.update(status="duplicate", duplicate_of=duplicate_of, error=note)
            else:
                file = f"images/{info.sha256[:16]}.{info.format}"
                with atomic_file(self.out / file, overwrite=True) as handle:
                    handle.write(outcome.data)
                row["file"] = file
                self._keep({k: str(v) for k, v in row.items()}, info.sha256, info.phash, file)
                if outcome.source == "thumbnail":
                    self.counts["thumbnail"] += 1
        self.counts[row["status"]] += 1
        self.writer.write(row)
        logger.debug("%s: %s %s", candidate.image_url[:200], row["status"], row["error"])

    def _duplicate_of(self, info: ImageInfo) -> tuple[str, str]:
        exact = self.kept_by_sha.get(info.sha256)
        if exact:
            return exact, "same bytes"
        if self.options.near_duplicates >= 0:
            index, distance = nearest(self.hashes, info.phash)
            if distance <= self.options.near_duplicates:
                return self.kept_files[index], f"near-duplicate: perceptual hashes {distance} bits apart"
        return "", ""

    def _save_dataset(self) -> None:
        from seg.dataset.core import Dataset
        from seg.dataset.store import save_dataset
        from seg.formats.json_text import dumps

        manifest = self.out / "manifest.csv"
        records = []
        for row in self.kept_rows:
            provenance = ("query", "engine", "page_url", "image_url", "title", "licence", "sha256", "source")
            try:
                width, height = int(row["width"]), int(row["height"])
            except (KeyError, ValueError) as e:
                raise FormatError("kept image without a size", path=manifest, item_id=row.get("file")) from e
            records.append(
                {
                    "image_id": Path(row["file"]).stem,
                    "file_name": row["file"],
                    "width": width,
                    "height": height,
                    "attributes": dumps({k: row.get(k, "") for k in provenance}),
                }
            )
        dataset = Dataset.from_records(records, [], [], image_root=self.out.absolute(), source=manifest)
        save_dataset(dataset, self.out / "dataset", overwrite=True)


def _as_candidate(item: object) -> Candidate:
    if isinstance(item, Candidate):
        return item
    if isinstance(item, str):
        return Candidate(image_url=item)
    raise OptionError("candidates must be Candidate objects or URL strings", actual=type(item).__name__)
