"""What a web search hands the downloader: one :class:`Candidate` per image found, with its provenance.

Search engines (:mod:`seg.collector.search`) yield candidates; :func:`seg.collector.download.download` fetches them and
writes one manifest row per candidate. ``seg collect urls`` makes candidates from a plain list of URLs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """One image to fetch and where it came from.

    Attributes:
        image_url: the full-size image (http, https, or a ``data:image/...`` URL).
        query: the search query that found it ("" for a URL list).
        engine: the engine profile's name ("" for a URL list).
        rank: position in the results, from 0.
        page_url: the web page the image is shown on.
        title: the result's title or alt text.
        licence: the licence hint the engine gives, if any.
        thumbnail_url: the engine's thumbnail, fetched instead when the full-size image cannot be.
    """

    image_url: str
    query: str = ""
    engine: str = ""
    rank: int = 0
    page_url: str = ""
    title: str = ""
    licence: str = ""
    thumbnail_url: str = ""
