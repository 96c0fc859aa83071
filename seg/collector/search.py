"""Web image search in a real browser, driven by engine profiles: data files that describe each engine's results page.

The engine profile (its file format, loading and validation) is in :mod:`seg.collector.engine_profile`. The code
here only knows the generic moves: open the search URL, dismiss a consent dialog, read fields from result items,
open a result to reveal its full-size image, scroll and press "more results".

Failures are loud: when the page loaded but the result selector matches nothing and the no-results marker is absent,
:class:`EngineLayoutError` names the profile to check; a genuine no-results page raises :class:`NoResultsError`; a
captcha page :class:`EngineBlockedError`. A search never ends quietly with zero images.

Results whose full-size URL cannot be found (no rule matched, the preview never showed one) are still yielded, with
the thumbnail as ``image_url`` and an empty ``thumbnail_url`` (a warning is logged once per query). When a ``rights``
filter other than ``any`` is given, each candidate's ``licence`` says which one the engine was asked for.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urljoin, urlsplit

from seg.collector.candidates import Candidate
from seg.collector.engine_profile import URL_FIELDS, EngineProfile, Rule
from seg.errors import FormatError, OptionError, SegError
from seg.progress import Progress

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from seg.collector.download import DownloadOptions

logger = logging.getLogger(__name__)

POLL = 0.05


class EngineLayoutError(SegError):
    """The results page does not look like its engine profile says: the engine changed its layout."""


class NoResultsError(SegError):
    """The engine says it found nothing for the query."""


class EngineBlockedError(SegError):
    """The engine answered with a captcha or an "unusual traffic" page instead of results."""


def search(
    profile: EngineProfile,
    query: str,
    *,
    driver: WebDriver,
    limit: int | None = None,
    filters: Mapping[str, str | None] | None = None,
    timeout: float = 10.0,
) -> Iterator[Candidate]:
    """Search one query and yield a :class:`Candidate` per result, lazily, loading more results as they are pulled.

    Nothing is done until the first candidate is asked for; then the results page opens, and each time the results
    on the page are used up the page is scrolled and its "more results" button pressed, until the page has no more,
    ``limit`` candidates were yielded, or the consumer stops pulling. Consumers may pull more than they need (some
    downloads fail or are duplicates): pass ``limit=None`` to let them.

    Args:
        profile: the engine profile.
        query: the search words.
        driver: a Selenium WebDriver (:func:`seg.collector.browser.open_browser`), used from this thread only.
        limit: the most candidates to yield (None: until the page has no more).
        filters: filter name -> value, among the profile's (``{"size": "large", "safe": "on"}``).
        timeout: seconds to wait for the results page to show results (or say it has none).

    Raises:
        OptionError: a filter value the profile does not define (raised at once, not on the first pull).
        EngineLayoutError: the page shows no results and no no-results marker, or no result gives an image URL.
        NoResultsError: the engine says it found nothing.
        EngineBlockedError: the engine shows a captcha page.
    """
    url = profile.url_for(query, filters)
    rights = (filters or {}).get("rights")
    licence = rights if rights and rights != "any" else ""
    return _Search(profile, query, driver, url, licence, timeout).run(limit)


class _Search:
    """One query's walk through a results page."""

    def __init__(self, profile: EngineProfile, query: str, driver: WebDriver, url: str, licence: str, timeout: float):
        self.profile = profile
        self.query = query
        self.driver = driver
        self.url = url
        self.licence = licence
        self.timeout = timeout
        self.consent_clicks = 0
        self.last_preview = ""
        self.warned_thumbnail = False

    def run(self, limit: int | None) -> Iterator[Candidate]:
        from selenium.common.exceptions import WebDriverException

        if limit is not None and limit <= 0:
            return
        try:
            logger.info("%s: searching %r (%s)", self.profile.name, self.query, self.url)
            self.driver.get(self.url)
            self._check_selectors()
            self._wait_for_results()
        except WebDriverException as e:
            raise SegError(f"could not load the results page {self.url}: {_first_line(e)}") from e
        done = yielded = usable = 0
        seen: set[str] = set()
        while True:
            try:
                rows = self._extract(done)
                if not rows and self._load_more(done):
                    continue
            except WebDriverException as e:
                raise self._lost(e) from e
            if not rows:
                break
            for offset, row in enumerate(rows):
                try:
                    candidate = self._candidate(done + offset, row)
                except WebDriverException as e:
                    raise self._lost(e) from e
                if candidate is None:
                    continue
                usable += 1
                if candidate.image_url in seen:
                    continue
                seen.add(candidate.image_url)
                yield candidate
                yielded += 1
                if limit is not None and yielded >= limit:
                    return
            done += len(rows)
        logger.info("%s: %d results for %r, %d with an image URL", self.profile.name, done, self.query, usable)
        if done and not usable:
            fields = [name for name in ("image_url", "thumbnail_url") if self.profile.fields.get(name)]
            raise EngineLayoutError(
                f"{done} results matched selector '{self.profile.results}' for query '{self.query}' but none gave an "
                f"image URL through the {' or '.join(fields)} rules; the engine's page layout has likely changed: "
                "check the profile",
                path=self.profile.path,
            )

    def _lost(self, error: Exception) -> SegError:
        return SegError(f"{self.profile.name}: the results page for '{self.query}' failed: {_first_line(error)}")

    # -- the page ----------------------------------------------------------------------------------------------------

    def _script(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def _check_selectors(self) -> None:
        """Every CSS selector of the profile must parse (a typo in a data file must not read as 'no results')."""
        profile = self.profile
        selectors = {"results": profile.results, "no_results": profile.no_results}
        for key in ("consent", "blocked"):
            if getattr(profile, key):
                selectors[key] = getattr(profile, key)
        if profile.more_button:
            selectors["more.button"] = profile.more_button
        if profile.preview:
            selectors["preview.image"] = profile.preview.image
            if profile.preview.click:
                selectors["preview.click"] = profile.preview.click
        for name, rules in profile.fields.items():
            for i, rule in enumerate(rules):
                if rule.selector:
                    selectors[f"fields.{name}[{i}].selector"] = rule.selector
        bad = self._script(_BAD_SELECTORS_JS, selectors)
        if bad:
            raise FormatError(
                f"engine profile: invalid CSS selector '{selectors[bad[0]]}' at {bad[0]}", path=profile.path
            )

    def _count(self, selector: str | None, visible: bool = False) -> int:
        if not selector:
            return 0
        return self._script(_COUNT_JS, selector, visible)

    def _wait_for_results(self) -> None:
        profile = self.profile
        deadline = time.monotonic() + self.timeout
        while True:
            if self.driver.current_url.startswith("chrome-error:"):
                raise SegError(f"could not load the results page {self.url} (the browser shows its error page)")
            if self._dismiss_consent():
                continue
            if self._count(profile.results):
                return
            if self._count(profile.blocked):
                raise EngineBlockedError(
                    f"engine '{profile.name}' answered query '{self.query}' with a captcha or 'unusual traffic' page "
                    f"(marker '{profile.blocked}'); wait a while or use another engine",
                    path=profile.path,
                )
            if self._count(profile.no_results):
                raise NoResultsError(
                    f"engine '{profile.name}' found no images for query '{self.query}' (its page says so); "
                    "try other words or fewer filters"
                )
            if time.monotonic() > deadline:
                raise EngineLayoutError(
                    f"no results matched selector '{profile.results}' for query '{self.query}'; the engine's page "
                    "layout has likely changed: check the profile",
                    path=profile.path,
                )
            time.sleep(POLL)

    def _dismiss_consent(self) -> bool:
        """Click the consent dialog's button when one shows (at most three times: a dialog that stays is ignored)."""
        if not self.profile.consent or self.consent_clicks >= 3 or not self._count(self.profile.consent, True):
            return False
        self.consent_clicks += 1
        logger.info("%s: dismissing the consent dialog (%s)", self.profile.name, self.profile.consent)
        self._click(self._script(_FIRST_VISIBLE_JS, self.profile.consent))
        time.sleep(POLL)
        return True

    def _click(self, element: Any) -> None:
        """A real click, or a script click when something covers the element."""
        from selenium.common.exceptions import ElementClickInterceptedException, ElementNotInteractableException

        if element is None:
            return
        try:
            self._script("arguments[0].scrollIntoView({block: 'center'});", element)
            element.click()
        except (ElementClickInterceptedException, ElementNotInteractableException):
            self._script("arguments[0].click();", element)

    def _extract(self, start: int) -> list[dict[str, list[str | None]]]:
        rules = {name: [[r.selector, r.attribute] for r in rules] for name, rules in self.profile.fields.items()}
        return self._script(_EXTRACT_JS, self.profile.results, start, rules)

    def _load_more(self, count: int) -> bool:
        """Scroll to the end, then press "more results": True once the page has more than ``count`` results."""
        self._script(_SCROLL_JS, self.profile.results)
        if self._wait_for_count(count, self.profile.more_wait, until_button=True):
            return True
        self._dismiss_consent()
        button = self._script(_FIRST_VISIBLE_JS, self.profile.more_button) if self.profile.more_button else None
        if button is None:
            return False
        logger.debug("%s: pressing %s", self.profile.name, self.profile.more_button)
        self._click(button)
        return self._wait_for_count(count, max(self.profile.more_wait, self.timeout))

    def _wait_for_count(self, count: int, seconds: float, until_button: bool = False) -> bool:
        """Wait until the page has more than ``count`` results (True), or ``seconds`` pass, or (``until_button``)
        the "more results" button shows (False)."""
        deadline = time.monotonic() + seconds
        button = self.profile.more_button if until_button else None
        while True:
            found, button_shown = self._script(_COUNT_AND_BUTTON_JS, self.profile.results, button)
            if found > count:
                return True
            if button_shown or time.monotonic() > deadline:
                return False
            time.sleep(POLL)

    # -- one result --------------------------------------------------------------------------------------------------

    def _candidate(self, index: int, row: Mapping[str, list[str | None]]) -> Candidate | None:
        base = self.driver.current_url
        values = {
            name: _first_value(rules, row.get(name, []), base if name in URL_FIELDS else None)
            for name, rules in self.profile.fields.items()
        }
        thumbnail = values.get("thumbnail_url", "")
        image = values.get("image_url", "")
        if not _is_image_url(thumbnail):
            thumbnail = ""
        if not _is_image_url(image) or image == thumbnail:
            image = ""
        if not image and self.profile.preview is not None:
            image = self._open_preview(index, thumbnail)
        if not image:
            if not thumbnail:
                logger.debug("%s: result %d of %r has no image URL", self.profile.name, index, self.query)
                return None
            if not self.warned_thumbnail:
                logger.warning(
                    "%s: no full-size URL for some results of %r: their thumbnails are used instead",
                    self.profile.name,
                    self.query,
                )
                self.warned_thumbnail = True
            image, thumbnail = thumbnail, ""
        page = values.get("page_url", "")
        return Candidate(
            image_url=image,
            query=self.query,
            engine=self.profile.name,
            rank=index,
            page_url=page if urlsplit(page).scheme in ("http", "https") else "",
            title=_clean_text(values.get("title", "")),
            licence=_clean_text(values.get("licence", "")) or self.licence,
            thumbnail_url=thumbnail,
        )

    def _open_preview(self, index: int, thumbnail: str) -> str:
        """Click result ``index`` and read the full-size URL from the preview; "" when none shows in time."""
        from selenium.common.exceptions import WebDriverException

        preview = self.profile.preview
        item = self._script(_NTH_JS, self.profile.results, index)
        if item is None:
            return ""
        target = self._script(_INSIDE_JS, item, preview.click) if preview.click else item
        try:
            self._click(target or item)
        except WebDriverException as e:
            logger.debug("%s: clicking result %d failed: %s", self.profile.name, index, _first_line(e))
            return ""
        deadline = time.monotonic() + preview.wait
        while True:
            for url in self._script(_VALUES_JS, preview.image, preview.attribute):
                if (
                    url
                    and urlsplit(url).scheme in ("http", "https")
                    and url not in (thumbnail, self.last_preview)
                    and not any(part in url for part in preview.reject)
                ):
                    self.last_preview = url
                    return url
            if time.monotonic() > deadline:
                logger.debug("%s: the preview of result %d showed no full-size URL", self.profile.name, index)
                return ""
            time.sleep(POLL)


def collect_images(
    profile: EngineProfile,
    queries: list[str],
    out: str | Path,
    *,
    limit: int,
    filters: Mapping[str, str | None] | None = None,
    options: DownloadOptions | None = None,
    overwrite: bool = False,
    page_timeout: float = 10.0,
    headless: bool = True,
    progress: Progress = None,
) -> dict:
    """Search each query in turn in headless Chromium and download up to ``limit`` images for EACH into ``out``.

    All queries share one output folder and one manifest (its ``query`` column says which query found an image);
    see :func:`seg.collector.download.download` for what is written. Like ``download``, a second run on the same
    folder resumes: a query that already has ``limit`` images is not searched again. The search is pulled lazily by
    the downloader and may offer more candidates than ``limit`` (failed downloads, duplicates), at most
    ``10 * limit + 20`` per query.

    Args:
        profile: the engine profile.
        queries: search words, one query per item.
        out: the output folder.
        limit: images to keep per query.
        filters: filter name -> value, among the profile's.
        options: download options (defaults: :class:`~seg.collector.download.DownloadOptions`).
        overwrite: start afresh in ``out``.
        page_timeout: seconds for a results page to show results.
        headless: run Chromium without a window.
        progress: a progress wrapper, passed to the downloader.

    Returns:
        ``out``, ``engine``, the summed ``kept``, ``duplicates``, ``thumbnails``, ``failed`` (count by status),
        ``total`` (images in ``out``), ``queries`` (the downloader's report per query, or ``{"skipped": "..."}``) and
        ``problems`` (one line per query that found nothing or could download nothing; empty when all went well).

    Raises:
        OptionError: no query, ``limit`` below 1, or a filter value the profile does not define.
        EngineLayoutError, EngineBlockedError: the engine's page cannot be read (raised at once: other queries would
            fail the same way). Images already downloaded stay, with their manifest rows; a rerun resumes.
    """
    from seg.collector.browser import open_browser
    from seg.collector.download import DownloadOptions, download

    if not queries or not all(q.strip() for q in queries):
        raise OptionError("expected at least one non-empty query", actual=queries)
    if limit < 1:
        raise OptionError("limit must be at least 1", expected=">= 1", actual=limit)
    for query in queries:
        profile.url_for(query, filters)  # unknown filter values fail before anything starts
    options = options or DownloadOptions()
    out = Path(out)
    report: dict[str, Any] = {"out": str(out), "engine": profile.name, "queries": {}, "problems": []}
    totals: dict[str, Any] = {"kept": 0, "duplicates": 0, "thumbnails": 0, "failed": {}}
    with contextlib.ExitStack() as stack:
        driver = None
        for number, query in enumerate(queries):
            fresh = overwrite and number == 0
            total, kept_here = (0, 0) if fresh else _kept_so_far(out, query)
            if kept_here >= limit:
                report["queries"][query] = {"skipped": f"{kept_here} images from an earlier run"}
                continue
            if driver is None:
                driver = stack.enter_context(open_browser(headless=headless))
            found = search(profile, query, driver=driver, limit=10 * limit + 20, filters=filters, timeout=page_timeout)
            try:
                result = download(
                    found, out, options=options, limit=total + limit - kept_here, overwrite=fresh, progress=progress
                )
            except NoResultsError as e:
                report["queries"][query] = {"error": str(e)}
                report["problems"].append(str(e))
                continue
            report["queries"][query] = result
            report["total"] = result["total"]
            for key in ("kept", "duplicates", "thumbnails"):
                totals[key] += result[key]
            for status, count in result["failed"].items():
                totals["failed"][status] = totals["failed"].get(status, 0) + count
            if result["kept"] == 0 and kept_here == 0:
                report["problems"].append(
                    f"query '{query}': none of the {result['pulled']} images {profile.name} found could be kept "
                    f"(see {out / 'manifest.csv'})"
                )
    report.update(totals)
    report.setdefault("total", _kept_so_far(out, "")[0])
    return report


def _kept_so_far(out: Path, query: str) -> tuple[int, int]:
    """Images kept in ``out`` by earlier runs: in all, and found by ``query``."""
    from seg.collector.manifest import read_manifest

    manifest = out / "manifest.csv"
    if not manifest.is_file():
        return 0, 0
    _, rows, _ = read_manifest(manifest)
    files = {row["file"]: row.get("query", "") for row in rows if row.get("status") == "ok" and row.get("file")}
    return len(files), sum(1 for found_by in files.values() if found_by == query)


def _first_value(rules: tuple[Rule, ...], raw: list[str | None], base: str | None) -> str:
    """The first usable value the rules give, JSON keys and URL parameters decoded; a URL field (``base`` given)
    is made absolute against the page's URL."""
    for rule, value in zip(rules, raw, strict=False):
        value = _decode(rule, value)
        if value:
            return urljoin(base, value) if base and not value.startswith("data:") else value
    return ""


def _decode(rule: Rule, value: str | None) -> str:
    if not isinstance(value, str) or not value.strip():
        return ""
    value = value.strip()
    if rule.json:
        try:
            data = json.loads(value)
        except ValueError:
            return ""
        found = data.get(rule.json) if isinstance(data, dict) else None
        return found.strip() if isinstance(found, str) else ""
    if rule.query_param:
        found = parse_qs(urlsplit(value).query).get(rule.query_param)
        return found[0].strip() if found else ""
    return value


def _is_image_url(url: str) -> bool:
    scheme = urlsplit(url).scheme.lower()
    return scheme in ("http", "https") or (scheme == "data" and url[5:].lower().startswith("image/"))


def _clean_text(text: str) -> str:
    """Whitespace collapsed; private-use characters (Bing's highlight markers around query words) removed."""
    return " ".join("".join(c for c in text if not 0xE000 <= ord(c) <= 0xF8FF).split())


def _first_line(error: Exception) -> str:
    text = (getattr(error, "msg", None) or str(error) or type(error).__name__).strip()
    return text.splitlines()[0] if text else type(error).__name__


# Scripts run in the page. Values are read with getAttribute, except src/href, read as properties (absolute URLs).
_READ_JS = """
function seg_read(el, attr) {
  if (attr === 'textContent') return el.textContent;
  if ((attr === 'src' || attr === 'href') && el.getAttribute(attr) && typeof el[attr] === 'string') return el[attr];
  return el.getAttribute(attr);
}
"""
_EXTRACT_JS = (
    _READ_JS
    + """
const [selector, start, rules] = arguments;
const items = document.querySelectorAll(selector);
const rows = [];
for (let i = start; i < items.length; i++) {
  const row = {};
  for (const [field, list] of Object.entries(rules)) {
    row[field] = list.map(([sel, attr]) => {
      const el = sel ? items[i].querySelector(sel) : items[i];
      return el ? seg_read(el, attr) : null;
    });
  }
  rows.push(row);
}
return rows;
"""
)
_VALUES_JS = (
    _READ_JS + "return Array.from(document.querySelectorAll(arguments[0])).map(e => seg_read(e, arguments[1]));"
)
_COUNT_JS = """
const found = Array.from(document.querySelectorAll(arguments[0]));
if (!arguments[1]) return found.length;
return found.filter(e => e.offsetWidth > 0 || e.offsetHeight > 0 || e.getClientRects().length > 0).length;
"""
_COUNT_AND_BUTTON_JS = """
const shown = arguments[1] && Array.from(document.querySelectorAll(arguments[1]))
  .some(e => e.offsetWidth > 0 || e.offsetHeight > 0 || e.getClientRects().length > 0);
return [document.querySelectorAll(arguments[0]).length, Boolean(shown)];
"""
_FIRST_VISIBLE_JS = """
return Array.from(document.querySelectorAll(arguments[0]))
  .find(e => e.offsetWidth > 0 || e.offsetHeight > 0 || e.getClientRects().length > 0) || null;
"""
_NTH_JS = "return document.querySelectorAll(arguments[0])[arguments[1]] || null;"
_INSIDE_JS = "return arguments[0].querySelector(arguments[1]);"
_SCROLL_JS = """
const items = document.querySelectorAll(arguments[0]);
if (items.length) items[items.length - 1].scrollIntoView({block: 'end'});
window.scrollTo(0, document.documentElement.scrollHeight);
"""
_BAD_SELECTORS_JS = """
const bad = [];
const probe = document.createDocumentFragment();
for (const [key, sel] of Object.entries(arguments[0])) {
  try { probe.querySelector(sel); } catch (e) { bad.push(key); }
}
return bad;
"""
