"""Loopback stand-ins for Google Images and Bing Images: result pages with each engine's real structure.

The pages keep what the shipped profiles rely on, as the real pages have it (2024-2025):

- Google (``/search?q=...&udm=2``): result tiles ``div.eA0Zlc`` with the source page in ``data-lpage``, a thumbnail
  ``img.YQ4gaf`` (``data:`` URIs for the first screen, http later), the title in ``div.toI8Rb`` inside the source link
  ``a.EZAeBe``. Clicking a tile fills the preview panel's ``img.sFlh5c.iPVvYb`` with the thumbnail, then with the
  full-size URL a moment later. Scrolling to the bottom fetches the next page of tiles; after that a "Show more
  results" button (``input.mye4qd``) appears and fetches the last one. A consent overlay with "Reject all"
  (``button#W0wltc``) covers the page until dismissed, when asked for.
- Bing (``/images/search?q=...``): ``li > div.iuscp > div.imgpt > a.iusc[m]`` where ``m`` is JSON with ``murl``
  (full size), ``purl`` (page), ``turl`` (thumbnail) and ``t`` (title, with Bing's U+E000/U+E001 highlight marks
  around query words); ``img.mimg`` has ``src`` on the first page and ``data-src`` (with a placeholder ``src``) on
  lazily loaded ones. Scrolling fetches ``/images/async?first=N``; then "See more images" (``a.btn_seemore``).

``site.mode`` switches what the search URL answers: ``"results"``, ``"renamed"`` (the same page with its class names
changed, as after a redesign), ``"empty"`` (the engine's own no-results page) or ``"captcha"``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import numpy as np
import pytest
from PIL import Image

from seg.collector.browser import BrowserError, browser_paths
from seg.collector.engine_profile import shipped_profile_path
from tests.collector.loopback import Reply, Route

#: Real origins of the shipped profiles, replaced by the loopback server's in tests.
ORIGINS = {"google": "https://www.google.com", "bing": "https://www.bing.com"}
SEARCH_PATHS = {"google": "/search", "bing": "/images/search"}
#: Class names the "renamed" layout changes (a redesign keeps the structure and renames everything).
RENAMES = {
    "google": {"eA0Zlc": "Rk8Lpz", "YQ4gaf": "vW2nTq", "toI8Rb": "Jm4Ksd", "sFlh5c": "qX9rAb", "mye4qd": "Tz3Pwe"},
    "bing": {"imgpt": "tilept", "iusc": "tlnk", "mimg": "timg", "btn_seemore": "btn_more2"},
}
PLACEHOLDER_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="


def require_chromium() -> None:
    """Skip when Chromium or ChromeDriver is missing, but fail when ``CI`` is set: CI must never skip these."""
    try:
        browser_paths()
    except BrowserError as e:
        message = f"{e} (the web search tests drive a real Chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def image_bytes(seed: int, size: tuple[int, int] = (160, 120), fmt: str = "PNG") -> bytes:
    """A distinct image per seed: a grid of random colour blocks (strong low frequencies: no near-duplicates)."""
    rng = np.random.default_rng(seed + 1000)
    blocks = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(blocks).resize(size, Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@dataclass
class Result:
    """One result of the fake engine: its images (served or not) and its provenance."""

    index: int
    title: str
    full_ok: bool = True  # False: the full-size URL answers 404
    preview_ok: bool = True  # False (Google): the preview never shows a full-size URL
    full: bytes = b""
    thumb: bytes = b""

    @property
    def full_path(self) -> str:
        return f"/img/full/{self.index}.png"

    @property
    def thumb_path(self) -> str:
        return f"/img/thumb/{self.index}.png"

    @property
    def page_path(self) -> str:
        return f"/pages/{self.index}.html"


def make_results(
    count: int, *, start: int = 0, missing_full: tuple[int, ...] = (), no_preview: tuple[int, ...] = ()
) -> list[Result]:
    """``count`` results with distinct images (numbered from ``start``); ``missing_full`` ranks 404 on their
    full-size URL, ``no_preview`` ranks never show one in Google's preview."""
    return [
        Result(
            index=start + i,
            title=f"Red kite {start + i} over the hills",
            full_ok=i not in missing_full,
            preview_ok=i not in no_preview,
            full=image_bytes(start + i),
            thumb=image_bytes(start + i, (64, 48), "PNG"),
        )
        for i in range(count)
    ]


def profile_for(engine: str, origin: str, folder: Path) -> Path:
    """The shipped profile with only its origin replaced by ``origin`` (the shipped selectors are what is tested)."""
    text = shipped_profile_path(engine).read_text(encoding="utf-8").replace(ORIGINS[engine], origin)
    path = folder / f"{engine}-loopback.json"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class EngineSite:
    """A fake engine: its routes for :func:`tests.collector.loopback.serve`, switchable with ``mode``."""

    engine: str
    results: list[Result]
    page_size: int = 6
    consent: bool = False
    mode: str = "results"
    #: results of particular queries (others get ``results``)
    by_query: dict[str, list[Result]] = field(default_factory=dict)

    def routes(self) -> dict[str, Route]:
        routes: dict[str, Route] = {SEARCH_PATHS[self.engine]: self._search, "/async/more": self._more}
        routes["/images/async"] = self._more
        for result in [*self.results, *(r for results in self.by_query.values() for r in results)]:
            routes[result.thumb_path] = Reply(result.thumb, content_type="image/png")
            routes[result.page_path] = Reply(f"<html><body><h1>{html.escape(result.title)}</h1></body></html>".encode())
            if result.full_ok:
                routes[result.full_path] = Reply(result.full, content_type="image/png")
        return routes

    def pages(self, query: str) -> list[list[Result]]:
        results = self.by_query.get(query, self.results)
        return [results[i : i + self.page_size] for i in range(0, len(results), self.page_size)]

    # -- replies -----------------------------------------------------------------------------------------------------

    def _base(self, handler) -> str:
        return f"http://{handler.headers.get('Host')}"

    def _search(self, handler) -> Reply:
        query = parse_qs(urlsplit(handler.path).query).get("q", [""])[0]
        base = self._base(handler)
        if self.mode == "captcha":
            body = _CAPTCHA[self.engine]
        elif self.mode == "empty":
            body = _EMPTY[self.engine].replace("{query}", html.escape(query))
        else:
            pages = self.pages(query)
            first = pages[0] if pages else []
            render = _google_items if self.engine == "google" else _bing_items
            body = _PAGE[self.engine]
            body = body.replace("{items}", render(first, base, query, lazy=False))
            body = body.replace("{full}", json.dumps(_full_map(first, base)))
            body = body.replace("{pages}", str(len(pages)))
            body = body.replace("{query_js}", json.dumps(query))
            body = body.replace("{consent}", _CONSENT[self.engine] if self.consent else "")
        return Reply(self._rename(body).encode())

    def _more(self, handler) -> Reply:
        params = parse_qs(urlsplit(handler.path).query)
        number = int(params.get("page", ["1"])[0])
        query = params.get("q", [""])[0]
        pages = self.pages(query)
        chunk = pages[number] if 0 < number < len(pages) else []
        render = _google_items if self.engine == "google" else _bing_items
        fragment = self._rename(render(chunk, self._base(handler), query, lazy=True))
        body = json.dumps({"html": fragment, "full": _full_map(chunk, self._base(handler))})
        return Reply(body.encode(), content_type="application/json")

    def _rename(self, text: str) -> str:
        if self.mode != "renamed":
            return text
        for old, new in RENAMES[self.engine].items():
            text = re.sub(rf"\b{old}\b", new, text)
        return text


def _full_map(results: list[Result], base: str) -> dict[str, str]:
    """Google keeps full-size URLs in page data and shows them in the preview panel; docid -> URL."""
    return {f"D{r.index}": base + r.full_path for r in results if r.preview_ok}


def _data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _google_items(results: list[Result], base: str, query: str, lazy: bool) -> str:
    items = []
    for r in results:
        # the first screen of real Google thumbnails is inlined as data: URIs, later ones are http URLs
        thumb = _data_uri(r.thumb) if (not lazy and r.index < 2) else base + r.thumb_path
        page = base + r.page_path
        items.append(
            f'<div jsname="dTDiAc" class="eA0Zlc WghbWd FnEtTd mkpRId m3LIae RLdvSe qyKxnc ivg-i PZPZlf GMCzAd" '
            f'data-docid="D{r.index}" data-lpage="{html.escape(page)}" data-ref-docid="R{r.index}">'
            f'<div class="H8Rx8c"><g-img class="mNsIhb"><img class="YQ4gaf" src="{html.escape(thumb)}" '
            f'alt="{html.escape(r.title)}" width="240" height="180"></g-img></div>'
            f'<div class="juwGPd BwPElf"><a class="EZAeBe" href="{html.escape(page)}" target="_blank">'
            f'<div class="toI8Rb OSrXXb">{html.escape(r.title)}</div><div class="guK3rf cHaqb">site{r.index}.example'
            "</div></a></div></div>"
        )
    return "\n".join(items)


def _bing_items(results: list[Result], base: str, query: str, lazy: bool) -> str:
    items = []
    for r in results:
        marked = r.title.replace("kite", "\ue000kite\ue001")
        meta = {
            "sid": "",
            "cturl": "",
            "cid": f"c{r.index}",
            "purl": base + r.page_path,
            "murl": base + r.full_path,
            "turl": base + r.thumb_path,
            "md5": "",
            "shkey": "",
            "t": marked,
            "mid": f"M{r.index}",
            "desc": "",
        }
        detail = f"/images/search?view=detailV2&amp;q={quote(query)}&amp;mediaurl={quote(base + r.full_path, safe='')}"
        thumb = base + r.thumb_path
        img = f'src="{PLACEHOLDER_GIF}" data-src="{html.escape(thumb)}"' if lazy else f'src="{html.escape(thumb)}"'
        items.append(
            f'<li data-idx="{r.index + 1}"><div class="iuscp varh isv"><div class="imgpt">'
            f'<a class="iusc" style="height:180px;width:240px" m="{html.escape(json.dumps(meta))}" href="{detail}">'
            f'<div class="img_cont hoff"><img class="mimg" {img} alt="{html.escape(r.title)}" height="180" '
            'width="240"></div></a>'
            f'<div class="infopt"><a class="inflnk" aria-label="{html.escape(r.title)}">{html.escape(r.title)}</a>'
            "</div></div></div></li>"
        )
    return "\n".join(items)


_STYLE = """<style>
body { margin: 0; font-family: sans-serif; }
.eA0Zlc, li { display: block; width: 260px; height: 300px; margin: 8px; }
#islsp { position: fixed; right: 0; top: 0; width: 420px; height: 100%; background: #fff; }
#consent { position: fixed; inset: 0; background: rgba(0, 0, 0, 0.6); z-index: 1000; }
#consent .box { background: #fff; margin: 100px auto; width: 400px; padding: 20px; }
</style>"""

# The loader both pages share: scrolling near the bottom fetches the next page until `scrollPages`, then a button.
_LOADER = """
let next = 1, loading = false;
const scrollPages = 2;
async function loadMore() {
  if (loading || next >= TOTAL_PAGES) return;
  loading = true;
  const reply = await fetch(MORE_URL + '?q=' + encodeURIComponent(QUERY) + '&page=' + next);
  const data = await reply.json();
  LIST.insertAdjacentHTML('beforeend', data.html);
  Object.assign(FULL, data.full);
  next += 1;
  loading = false;
}
window.addEventListener('scroll', () => {
  if (window.innerHeight + window.scrollY < document.documentElement.scrollHeight - 300) return;
  if (next < scrollPages) { loadMore(); return; }
  if (!loading && next < TOTAL_PAGES) MORE_BUTTON.style.display = 'inline-block';
});
MORE_BUTTON.addEventListener('click', () => { MORE_BUTTON.style.display = 'none'; loadMore(); });
"""

_PAGE = {
    "google": (
        "<!doctype html><html><head><title>{query_js} - Google Search</title>"
        + _STYLE
        + """</head><body>
{consent}
<div id="search"><div id="rso"><div class="wH6SXe u32vCb" id="islrg">
{items}
</div></div></div>
<div class="YstHxe"><input class="mye4qd" type="button" value="Show more results" style="display:none"></div>
<div id="islsp"><div class="p7sI2"><a class="YsLeY" href="#">
<img class="sFlh5c FyHeAf iPVvYb" src="" alt=""></a></div></div>
<script>
const QUERY = {query_js}, TOTAL_PAGES = {pages}, FULL = {full}, MORE_URL = '/async/more';
const LIST = document.getElementById('islrg');
const MORE_BUTTON = document.querySelector('input.mye4qd');
document.addEventListener('click', (event) => {
  const tile = event.target.closest('.eA0Zlc');
  if (!tile) return;
  event.preventDefault();
  const big = document.querySelector('#islsp img.sFlh5c');
  big.src = tile.querySelector('img.YQ4gaf').src;
  const full = FULL[tile.dataset.docid];
  if (full) setTimeout(() => { big.src = full; }, 60);
});
"""
        + _LOADER
        + "</script></body></html>"
    ),
    "bing": (
        "<!doctype html><html><head><title>{query_js} - Bing images</title>"
        + _STYLE
        + """</head><body>
{consent}
<div id="b_content"><div id="vm_c"><div class="dg_b"><div id="mmComponent_images_1" class="dgControl waterfall">
<ul class="dgControl_list">
{items}
</ul></div>
<div class="mm_seemore"><a class="btn_seemore cbtn mBtn" href="javascript:void(0)" style="display:none">
<strong>See more images</strong></a></div>
</div></div></div>
<script>
const QUERY = {query_js}, TOTAL_PAGES = {pages}, FULL = {full}, MORE_URL = '/images/async';
const LIST = document.querySelector('ul.dgControl_list');
const MORE_BUTTON = document.querySelector('a.btn_seemore');
"""
        + _LOADER
        + "</script></body></html>"
    ),
}

_CONSENT = {
    "google": '<div id="consent"><div class="box"><h2>Before you continue to Google</h2>'
    '<button id="W0wltc" onclick="document.getElementById(\'consent\').remove()">Reject all</button>'
    '<button id="L2AGLb" onclick="document.getElementById(\'consent\').remove()">Accept all</button></div></div>',
    "bing": '<div id="consent"><div class="box bnp_cookie_banner"><p>Microsoft and our third-party vendors use cookies'
    '</p><button id="bnp_btn_accept" onclick="document.getElementById(\'consent\').remove()">Accept</button>'
    '<button id="bnp_btn_reject" onclick="document.getElementById(\'consent\').remove()">Reject</button></div></div>',
}

_EMPTY = {
    "google": '<!doctype html><html><body><div id="search"><div id="topstuff"><div class="card-section">'
    '<p>Your search - <b>{query}</b> - did not match any image results.</p></div></div><div id="rso"></div>'
    "</div></body></html>",
    "bing": '<!doctype html><html><body><div id="b_content"><ol id="b_results"><li class="b_no">'
    "<h1>There are no results for <strong>{query}</strong></h1></li></ol></div></body></html>",
}

_CAPTCHA = {
    "google": "<!doctype html><html><body><p>Our systems have detected unusual traffic from your computer network.</p>"
    '<form id="captcha-form" action="index" method="post"><div id="recaptcha"></div></form></body></html>',
    "bing": "<!doctype html><html><body><p>One last step</p></body></html>",
}
