"""The HTML report of a curation: one self-contained page that shows what was kept, what was dropped, and why.

The page opens from disk with nothing else: thumbnails are JPEG ``data:`` URIs, the style sheet and the few lines of
script (a filter box) are inline, plots are inline SVG. A Content-Security-Policy allows exactly that (no network,
no other script), so a string from the data that escaped its escaping still could not run. Every string from the data
(file names, classes, reasons, ids) is HTML-escaped. Without script the page is complete; the script only filters.

Layout: a header (source, counts, the keep rule, the weights and the score formula), a legend of the signals and
class colours, histograms of the score (the cut marked) and of each group's badness with kept and dropped images in
two colours, then the kept images best first and the dropped ones, in a section of their own, worst first. The best
and the worst ``cards`` images get a card with a thumbnail (so each section opens with its cards); the others are rows
of a compact table, so ten thousand images make a page of a few megabytes, not gigabytes.

The parts live next door: :mod:`seg.curate.report_tables` (the tables completed), :mod:`seg.curate.report_thumbnails`
(thumbnails and overlays), :mod:`seg.curate.report_plots` (histograms), :mod:`seg.curate.report_assets` (style sheet,
script, Content-Security-Policy, escaping).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from seg.curate.report_assets import CSP, SCRIPT, STYLE, esc
from seg.curate.report_plots import DROPPED_COLOUR, KEPT_COLOUR, histogram
from seg.curate.report_tables import image_table, object_table
from seg.curate.report_thumbnails import SEVERE, Drawn, class_colour, draw_thumbnail
from seg.curate.score import REASON_MIN
from seg.curate.signals import GROUPS, Signal
from seg.dataset.core import Dataset
from seg.dataset.paths import inside
from seg.errors import OptionError, SegError
from seg.outputs import atomic_file
from seg.progress import Progress

logger = logging.getLogger(__name__)

#: Most objects listed under a card.
_CARD_OBJECTS = 12


def write_report(
    path: str | os.PathLike[str],
    dataset: Dataset,
    images: pd.DataFrame,
    objects: pd.DataFrame | None,
    signals: Sequence[Signal],
    *,
    weights: Mapping[str, float],
    top: int | None = None,
    min_score: float | None = None,
    by: Literal["image", "object"] | None = None,
    source: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    thumbnail: int = 192,
    cards: int = 200,
    progress: Progress = None,
) -> Path:
    """Write the HTML report of a curation (atomically).

    Args:
        path: the ``.html`` file to write.
        dataset: the source Dataset (images on disk, object masks and categories).
        images: one row per image: ``image_id``, ``file_name``, ``score``, ``rank``, ``kept``, one column per group
            (its badness), one per signal, ``reasons`` (see :func:`seg.curate.score.combine`).
        objects: one row per object: ``object`` (position in ``dataset.objects``), ``image_id``, ``category``,
            ``score``, ``kept``, one column per object-level signal, ``reasons``; None when there are none.
        signals: the signals measured (the legend).
        weights: group -> weight used in the score.
        top: the ``--top`` the curation kept by, if any.
        min_score: the ``--min-score`` it kept by, if any.
        by: whether whole images or single objects were kept; inferred from the ``kept`` columns when None.
        source: what was curated, named in the header (default: the Dataset's image folder).
        overwrite: replace an existing file.
        thumbnail: the longer side of thumbnails, in pixels.
        cards: how many of the best and how many of the worst images get a card with a thumbnail; the rest are
            table rows.
        progress: wraps the thumbnail loop (e.g. tqdm).

    Returns:
        ``path``.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        OptionError: ``thumbnail`` outside 16..2048, ``cards`` below 0, an unknown ``by``, or an ``images`` table
            without ``image_id``.
    """
    if not 16 <= thumbnail <= 2048:
        raise OptionError("thumbnail size must lie in 16..2048 pixels", actual=thumbnail)
    if cards < 0:
        raise OptionError("cards must be at least 0", actual=cards)
    if by not in (None, "image", "object"):
        raise OptionError(f"unknown curation unit {by!r}", expected="image or object", actual=by)
    page = _Page.build(dataset, images, objects, signals, weights, top, min_score, by, source, thumbnail, cards)
    path = Path(path)
    with atomic_file(path, overwrite, "w") as handle:
        for part in page.render(progress):
            handle.write(part)
    logger.info("wrote the curation report %s (%d images, %d cards)", path, len(page.images), page.card_count)
    return path


# -- the page ------------------------------------------------------------------------------------------------------


@dataclass
class _Page:
    """Everything the page shows, prepared once; :meth:`render` streams the HTML."""

    dataset: Dataset
    images: pd.DataFrame  # sorted by rank, with kept/flagged/section columns filled in
    objects: pd.DataFrame  # indexed by object position
    drawn: Drawn  # the same objects as arrays, for the thumbnails
    signals: list[Signal]
    weights: dict[str, float]
    top: int | None
    min_score: float | None
    by: str
    source: str
    thumbnail: int
    cards: int
    colours: dict[str, str]

    @classmethod
    def build(
        cls,
        dataset: Dataset,
        images: pd.DataFrame,
        objects: pd.DataFrame | None,
        signals: Sequence[Signal],
        weights: Mapping[str, float],
        top: int | None,
        min_score: float | None,
        by: str | None,
        source: str | os.PathLike[str] | None,
        thumbnail: int,
        cards: int,
    ) -> _Page:
        table = image_table(images, top, min_score)
        object_signals = [s.name for s in signals if s.level == "object"]
        per_object = object_table(objects, dataset, object_signals)
        if by is None:
            kept_images = set(table.loc[table["kept"], "image_id"])
            partial = (~per_object["kept"]) & per_object["image_id"].isin(kept_images)
            by = "object" if bool(partial.any()) else "image"
        if by == "object":
            dropped_in = set(per_object.loc[~per_object["kept"], "image_id"])
            table["section"] = np.where(table["image_id"].isin(dropped_in), "dropped", "kept")
        else:
            table["section"] = np.where(table["kept"], "kept", "dropped")
        flagged_in = set(per_object.loc[per_object["flagged"], "image_id"])
        table["flagged"] = table["image_id"].isin(flagged_in) | (table["reasons"] != "")
        n = len(table)
        position = np.arange(n)
        table["card"] = (position < cards) | (position >= n - cards)
        names = [c.name for c in dataset.categories]
        names += sorted(set(per_object["category"]) - set(names))
        colours = {name: class_colour(i) for i, name in enumerate(names)}
        if source is None:
            source = dataset.image_root if dataset.image_root is not None else "(in memory)"
        return cls(
            dataset=dataset,
            images=table,
            objects=per_object,
            drawn=Drawn.of(dataset.objects, per_object),
            signals=list(signals),
            weights={g: float(w) for g, w in weights.items()},
            top=top,
            min_score=min_score,
            by=by,
            source=str(source),
            thumbnail=thumbnail,
            cards=cards,
            colours=colours,
        )

    @property
    def card_count(self) -> int:
        return int(self.images["card"].sum())

    # -- rendering ---------------------------------------------------------------------------------------------

    def render(self, progress: Progress) -> Iterator[str]:
        title = f"Curation report: {self.source}"
        yield (
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>\n"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            "<meta name='viewport' content='width=device-width,initial-scale=1'>\n"
            f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head><body><main>\n"
        )
        yield self._header()
        yield self._legend()
        yield self._plots()
        yield (
            "<div id='controls' hidden><label>Filter <input id='q' type='search' "
            "placeholder='file name, class, reason…'></label><label>Show <select id='show'>"
            "<option value='all'>all</option><option value='kept'>kept</option>"
            "<option value='dropped'>dropped</option><option value='flagged'>with reasons</option>"
            "</select></label><span id='shown'></span></div>\n"
        )
        yield from self._sections(progress)
        yield f"</main><script>{SCRIPT}</script></body></html>\n"

    def _rule(self) -> str:
        unit = "objects" if self.by == "object" else "images"
        rules = []
        if self.top is not None:
            rules.append(f"the best {self.top} {unit} by score")
        if self.min_score is not None:
            rules.append(f"every {unit[:-1]} scoring at least {self.min_score:g}")
        return " and ".join(rules) if rules else "as marked by the curation"

    def _header(self) -> str:
        images, objects = self.images, self.objects
        kept = int(images["kept"].sum())
        dropped_sections = int((images["section"] == "dropped").sum())
        parts = [
            "<header><h1>Curation report</h1>",
            f"<p class='sub'>Source <b>{esc(self.source)}</b> · <b>{len(images)}</b> images · "
            f"<b>{len(self.dataset.objects)}</b> objects · <b>{len(self.dataset.categories)}</b> classes</p>",
        ]
        if self.by == "object":
            kept_objects = int(objects["kept"].sum())
            parts.append(
                f"<p class='sub'>Kept <b>{kept_objects}</b> of {len(objects)} objects "
                f"({len(objects) - kept_objects} dropped): {esc(self._rule())}. "
                f"{dropped_sections} images lost objects; every image stays.</p>"
            )
        else:
            parts.append(
                f"<p class='sub'>Kept <b>{kept}</b> of {len(images)} images, dropped "
                f"<b>{len(images) - kept}</b>: {esc(self._rule())}.</p>"
            )
        parts.append(
            "<nav><a href='#legend'>Signals</a><a href='#plots'>Distributions</a>"
            "<a href='#kept'>Kept</a><a href='#dropped'>Dropped</a></nav></header>\n"
        )
        return "".join(parts)

    def _legend(self) -> str:
        weights = self.weights
        total = sum(weights.get(g, 0.0) for g in GROUPS)
        terms = " + ".join(f"{weights.get(g, 0.0):g}·{g}" for g in GROUPS)
        out = [
            "<section id='legend'><h2>How images are scored</h2>",
            f"<p>score = 1 − (<span class='formula'>{esc(terms)}</span>) / {total:g}</p>",
            "<p>Each signal measures one way an annotation can be wrong as a badness between 0 (nothing wrong) and 1 "
            "(surely wrong); not measured counts as 0. A group's badness is its worst signal; object-level signals "
            "reach their image as the worst object. The score is 1 minus the weighted mean of the group badness, so "
            "1 means no signal fired. Ties are broken by image id. A signal is named among an image's reasons when "
            f"its badness reaches {REASON_MIN:g}; objects with reasons are outlined thick in the thumbnails "
            f"(<span class='tag'>red</span> badness ≥ {SEVERE:g}, <span class='tag mild'>orange</span> below) "
            "and labelled with the id the reasons use.</p>",
            "<h3>Classes</h3><p>",
            " ".join(
                f"<span><svg width='12' height='12'><rect width='12' height='12' fill='{colour}'/></svg> "
                f"{esc(name)}</span>"
                for name, colour in self.colours.items()
            )
            or "<span class='none'>no classes</span>",
            "</p><h3>Signals</h3>",
            "<table class='legend'><tr><th>signal</th><th>level</th><th>reason shown</th><th>what it measures</th>"
            f"<th>images ≥ {REASON_MIN:g} (kept / dropped)</th></tr>",
        ]
        images = self.images
        dropped = images["section"] == "dropped"
        by_group: dict[str, list[Signal]] = {g: [] for g in GROUPS}
        for signal in self.signals:
            by_group.setdefault(signal.group, []).append(signal)
        for group, members in by_group.items():
            out.append(
                f"<tr><th colspan='5'>{esc(group)} · weight {weights.get(group, 0.0):g}"
                f"{'' if members else ' · no signals'}</th></tr>"
            )
            for signal in members:
                if signal.name in images.columns:
                    values = pd.to_numeric(images[signal.name], errors="coerce")
                    fired = values >= REASON_MIN
                    measured = int(values.notna().sum())
                    counts = (
                        f"{int((fired & ~dropped).sum())} / {int((fired & dropped).sum())}"
                        if measured
                        else "not measured"
                    )
                else:
                    counts = "not measured"
                out.append(
                    f"<tr><td>{esc(signal.name)}</td><td>{esc(signal.level)}</td><td>{esc(signal.reason)}</td>"
                    f"<td>{esc(signal.explanation)}</td><td class='n'>{counts}</td></tr>"
                )
        out.append("</table></section>\n")
        return "".join(out)

    def _plots(self) -> str:
        images = self.images
        if self.by == "object":
            scored, status, unit = self.objects, ~self.objects["kept"].to_numpy(), "objects"
        else:
            scored, status, unit = images, (images["section"] == "dropped").to_numpy(), "images"
        scores = pd.to_numeric(scored["score"], errors="coerce").to_numpy(dtype=float)
        cut = self._cut(scores, ~status)
        out = [
            "<section id='plots'><h2>Distributions</h2><p>",
            f"<svg width='12' height='12'><rect width='12' height='12' fill='{KEPT_COLOUR}'/></svg> kept ",
            f"<svg width='12' height='12'><rect width='12' height='12' fill='{DROPPED_COLOUR}'/></svg> dropped"
            + (" (images that lost objects)" if self.by == "object" else ""),
            "</p><div class='plots'>",
            histogram(scores, status, f"score of {unit} (higher is better)", cut, width=460),
        ]
        dropped = (images["section"] == "dropped").to_numpy()
        for group in GROUPS:
            values = (
                pd.to_numeric(images[group], errors="coerce").to_numpy(dtype=float)
                if group in images.columns
                else np.full(len(images), np.nan)
            )
            out.append(histogram(values, dropped, f"{group} badness (weight {self.weights.get(group, 0):g})"))
        out.append("</div></section>\n")
        return "".join(out)

    def _cut(self, scores: npt.NDArray[np.float64], kept: npt.NDArray[np.bool_]) -> tuple[float, str] | None:
        if self.min_score is not None:
            return float(self.min_score), f"min score {self.min_score:g}"
        if self.top is not None and kept.any() and (~kept).any():
            lowest = np.nanmin(scores[kept]) if np.isfinite(scores[kept]).any() else math.nan
            if math.isfinite(lowest):
                return float(lowest), f"cut: top {self.top}"
        return None

    def _sections(self, progress: Progress) -> Iterator[str]:
        columns = ["image_id", "file_name", "score", "rank", "reasons", "section", "flagged", "card"]
        columns += [g for g in GROUPS if g in self.images.columns]
        rows = list(self.images[columns].itertuples(index=False))
        sizes = dict(
            zip(
                self.dataset.images["image_id"].astype(str),
                zip(self.dataset.images["width"].astype(int), self.dataset.images["height"].astype(int), strict=True),
                strict=True,
            )
        )
        members = self.dataset.objects.groupby("image_id", sort=False).indices if len(self.dataset.objects) else {}
        where = {image_id: i for i, image_id in enumerate(self.dataset.images["image_id"].astype(str))}
        carded = [r for r in rows if r.card]
        work = iter(progress(carded) if progress is not None else carded)
        titles = (
            {"kept": "images with every object kept", "dropped": "images that lost objects"}
            if self.by == "object"
            else {"kept": "images kept", "dropped": "images dropped"}
        )
        for section, order in (("kept", "best first"), ("dropped", "worst first")):
            # each section opens with its cards: the best kept, the worst dropped; the rows near the cut follow
            chosen = [r for r in rows if r.section == section]
            if section == "dropped":
                chosen.reverse()
            yield f"<section id='{section}'><h2>{len(chosen)} {titles[section]}, {order}</h2>\n"
            if not chosen:
                yield "<p class='none'>None.</p>\n"
            for is_card, run in _runs(chosen):
                if is_card:
                    yield "<div class='cards'>\n"
                    for row in run:
                        next(work, None)  # one step of the progress bar per card
                        size = sizes.get(row.image_id, (0, 0))
                        path = _image_path(self.dataset, where.get(row.image_id))
                        yield self._card(row, path, size, members.get(row.image_id, ()))
                    yield "</div>\n"
                else:
                    yield (
                        "<table class='rows'><tr><th>rank</th><th>score</th><th>file</th><th>status</th>"
                        "<th>reasons</th></tr>\n"
                    )
                    for row in run:
                        yield self._row(row)
                    yield "</table>\n"
            yield "</section>\n"
        for _ in work:  # finish the bar
            pass

    def _search_text(self, row, extra: Sequence[str] = ()) -> str:
        return esc(" ".join([str(row.file_name), str(row.image_id), str(row.reasons), *extra]).lower())

    def _status(self, row) -> str:
        return "dropped" if row.section == "dropped" else "kept"

    def _row(self, row) -> str:
        status = self._status(row)
        return (
            f"<tr data-q='{self._search_text(row)}' data-status='{status}' data-flagged='{int(row.flagged)}'>"
            f"<td class='n'>{_rank_text(row.rank)}</td><td class='n'>{_score_text(row.score)}</td>"
            f"<td class='file'>{esc(row.file_name)}</td><td><span class='badge {status}'>{status}</span></td>"
            f"<td>{esc(row.reasons)}</td></tr>\n"
        )

    def _card(self, row, path: Path | None, size: tuple[int, int], positions: Sequence[int]) -> str:
        status = self._status(row)
        drawn = self.drawn.take(np.asarray(positions, np.int64))
        width, height = size
        thumb = draw_thumbnail(path, width, height, drawn, self.colours, self.thumbnail)
        flagged = np.flatnonzero(drawn.flagged)
        groups = [
            f"<span>{esc(g)} {float(getattr(row, g)):.2f}</span>"
            for g in GROUPS
            if g in self.images.columns and _visible(getattr(row, g))
        ]
        reasons = [r for r in str(row.reasons).split("; ") if r]
        parts = [
            f"<article class='card {status}' id='rank-{_rank_text(row.rank)}' data-q='"
            f"{self._search_text(row, list(drawn.category[flagged]))}' data-status='{status}' "
            f"data-flagged='{int(row.flagged)}'>",
            thumb.html(row.file_name),
            f"<div class='head'><span class='badge {status}'>{status}</span><span>rank {_rank_text(row.rank)}"
            f"</span><span class='score'>score {_score_text(row.score)}</span></div>",
            f"<div class='file'>{esc(row.file_name)}</div>",
        ]
        if thumb.note:
            parts.append(f"<div class='note'>{esc(thumb.note)}</div>")
        if groups:
            parts.append(f"<div class='groups'>{''.join(groups)}</div>")
        if reasons:
            parts.append("<ul class='reasons'>" + "".join(f"<li>{esc(r)}</li>" for r in reasons) + "</ul>")
        else:
            parts.append("<div class='none'>no reasons: nothing cost points</div>")
        if len(flagged):
            items = []
            for k in flagged[:_CARD_OBJECTS]:
                mild = "" if drawn.worst[k] >= SEVERE else " mild"
                dropped = " · dropped" if self.by == "object" and not drawn.kept[k] else ""
                items.append(
                    f"<li><span class='tag{mild}'>{esc(drawn.label[k])}</span>{esc(drawn.category[k])}{dropped}: "
                    f"{esc(drawn.reasons[k])}</li>"
                )
            if len(flagged) > _CARD_OBJECTS:
                items.append(f"<li class='none'>and {len(flagged) - _CARD_OBJECTS} more objects with reasons</li>")
            parts.append("<ol class='objects'>" + "".join(items) + "</ol>")
        parts.append("</article>\n")
        return "".join(parts)


# -- helpers -------------------------------------------------------------------------------------------------------


def _image_path(dataset: Dataset, position: int | None) -> Path | None:
    """Where the image at row ``position`` lies (as :meth:`Dataset.image_path` says: a ``path`` column, else
    ``file_name`` under the row's ``root`` or the image folder), or None when unknown or escaping its folder."""
    if position is None:
        return None
    row = dataset.images.iloc[position]
    if isinstance(row.get("path"), str):
        return Path(row["path"])
    root = row.get("root") if isinstance(row.get("root"), str) else dataset.image_root
    if root is None:
        return None
    try:
        return inside(root, str(row["file_name"]))
    except SegError:
        return None


def _runs(rows: list) -> Iterator[tuple[bool, list]]:
    """Consecutive rows grouped by whether they get a card."""
    run: list = []
    for row in rows:
        if run and bool(row.card) != bool(run[0].card):
            yield bool(run[0].card), run
            run = []
        run.append(row)
    if run:
        yield bool(run[0].card), run


def _visible(value: object) -> bool:
    """True for a badness that shows as more than 0.00."""
    try:
        return float(value) >= 0.005  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _score_text(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    return f"{number:.3f}" if math.isfinite(number) else "–"


def _rank_text(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    return str(int(number)) if math.isfinite(number) else "–"
