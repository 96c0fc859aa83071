"""Engine profiles: data files that describe each search engine's results page, loaded and validated.

An engine's page structure changes every few months. Everything that depends on it lives in a JSON **profile**
(``seg/collector/engines/<name>.json``, shipped for ``google`` and ``bing``), so that a page change is a data edit: copy
the shipped profile (``seg collect google --print-profile``), fix a selector, pass it with ``--profile``. The code here
only knows the generic moves: open the search URL, dismiss a consent dialog, read fields from result items, open a
result to reveal its full-size image, scroll and press "more results".

A profile holds:

- ``name``, ``description``;
- ``search_url``: the results page, with ``{query}`` where the URL-encoded query goes;
- ``filters``: for each filter (``size``, ``type``, ``colour``, ``rights``, ``safe``) and each value a user may pick,
  the URL parameters it adds (``{"tbs": "isz:l"}``; ``{}`` adds nothing). Parts that several filters add to one
  parameter are joined with that parameter's separator from ``parameters`` (Google's ``tbs`` takes ``,``; Bing's
  ``qft`` parts start with ``+`` and are concatenated);
- ``consent``: the button that dismisses a cookie/consent dialog (the reject button where there is one);
- ``blocked``: a marker of a captcha or "unusual traffic" page (optional);
- ``results``: a CSS selector matching one element per result;
- ``no_results``: a marker that the engine genuinely found nothing;
- ``fields``: for ``image_url`` (full size), ``thumbnail_url``, ``page_url``, ``title`` and optionally ``licence``, a
  list of rules tried in order, each ``{"selector": CSS inside the result ("" or absent: the result itself),
  "attribute": name or "textContent", "json": key (the attribute is JSON), "query_param": name (the attribute is a
  URL)}``; the first non-empty value wins;
- ``preview``: how to reveal the full-size URL of a result that does not carry it: ``click`` (CSS inside the result),
  ``image`` (CSS of the large image in the page), ``attribute``, ``wait`` (seconds) and ``reject`` (substrings of URLs
  that are the engine's own thumbnails, never the full-size image); or ``null``;
- ``more``: ``button`` (CSS of a "more results" button, or null) and ``wait`` (seconds to wait for new results after
  a scroll or a click).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from seg.errors import FormatError, OptionError
from seg.formats.json_text import read_json

#: The filters a profile may define, in the order the CLI shows them.
FILTER_NAMES = ("size", "type", "colour", "rights", "safe")
#: The result fields profiles describe; image_url or thumbnail_url must have rules.
FIELD_NAMES = ("image_url", "thumbnail_url", "page_url", "title", "licence")
PROFILE_KEYS = {
    "name",
    "description",
    "search_url",
    "parameters",
    "filters",
    "consent",
    "blocked",
    "results",
    "no_results",
    "fields",
    "preview",
    "more",
}
URL_FIELDS = ("image_url", "thumbnail_url", "page_url")
RULE_KEYS = {"selector", "attribute", "json", "query_param"}
PREVIEW_KEYS = {"click", "image", "attribute", "wait", "reject"}
MORE_KEYS = {"button", "wait"}


@dataclass(frozen=True)
class Rule:
    """Where one field of a result lives: an element inside the result, its attribute, and how to decode it."""

    selector: str = ""
    attribute: str = "textContent"
    json: str | None = None
    query_param: str | None = None


@dataclass(frozen=True)
class Preview:
    """How to reveal a result's full-size image by clicking it."""

    click: str
    image: str
    attribute: str = "src"
    wait: float = 4.0
    reject: tuple[str, ...] = ()


@dataclass(frozen=True)
class EngineProfile:
    """A validated engine profile (see the module docstring for the file format)."""

    name: str
    path: Path
    search_url: str
    results: str
    no_results: str
    fields: Mapping[str, tuple[Rule, ...]]
    filters: Mapping[str, Mapping[str, Mapping[str, str]]]
    parameters: Mapping[str, str]
    consent: str | None = None
    blocked: str | None = None
    preview: Preview | None = None
    more_button: str | None = None
    more_wait: float = 1.5
    description: str = ""

    def url_for(self, query: str, filters: Mapping[str, str | None] | None = None) -> str:
        """The results page URL for ``query`` with the given filter values (``None`` values are left out).

        Raises:
            OptionError: a filter or a value this profile does not define.
        """
        url = self.search_url.replace("{query}", quote_plus(query))
        parts: dict[str, list[str]] = {}
        for name, value in (filters or {}).items():
            if value is None:
                continue
            choices = self.filters.get(name)
            if choices is None or value not in choices:
                raise OptionError(
                    f"engine profile '{self.name}' has no {name} filter '{value}'",
                    path=self.path,
                    expected=f"one of {', '.join(choices)}" if choices else f"no {name} filter in this profile",
                )
            for parameter, part in choices[value].items():
                parts.setdefault(parameter, []).append(part)
        if not parts:
            return url
        extra = "&".join(
            f"{quote(parameter)}={quote(self.parameters.get(parameter, ',').join(values), safe=':+,')}"
            for parameter, values in parts.items()
        )
        return url + ("&" if "?" in url else "?") + extra

    def filter_values(self, name: str) -> list[str]:
        """The values this profile accepts for one filter."""
        return list(self.filters.get(name, {}))


def shipped_profiles() -> list[str]:
    """Names of the engine profiles shipped with seg."""
    folder = resources.files("seg.collector").joinpath("engines")
    return sorted(entry.name.removesuffix(".json") for entry in folder.iterdir() if entry.name.endswith(".json"))


def shipped_profile_path(name: str) -> Path:
    """The file of a shipped engine profile.

    Raises:
        OptionError: no profile of that name is shipped.
    """
    if name not in shipped_profiles():
        raise OptionError(f"no engine profile named '{name}'", expected=f"one of {', '.join(shipped_profiles())}")
    return Path(str(resources.files("seg.collector").joinpath("engines", f"{name}.json")))


def load_profile(path: str | Path) -> EngineProfile:
    """Read and validate an engine profile file (a shipped one: ``load_profile(shipped_profile_path("google"))``).

    Raises:
        FormatError: unreadable or malformed JSON, a missing or misspelt key, a value of the wrong type.
    """
    path = Path(path)
    data = read_json(path, expected="an engine profile (JSON object)")
    return parse_profile(data, path)


def parse_profile(data: Any, path: Path) -> EngineProfile:
    """Validate the parsed JSON of a profile (``path`` names it in errors)."""
    check = _Checker(path)
    check.mapping(data, "", PROFILE_KEYS)
    search_url = check.text(data, "search_url")
    if "{query}" not in search_url or urlsplit(search_url).scheme not in ("http", "https"):
        check.fail("search_url", "an http(s) URL with {query} in it", search_url)
    fields = check.mapping(check.required(data, "fields"), "fields", set(FIELD_NAMES))
    rules = {
        name: tuple(check.rule(rule, f"fields.{name}[{i}]") for i, rule in enumerate(check.list(fields, name)))
        for name in fields
    }
    if not rules.get("image_url") and not rules.get("thumbnail_url"):
        check.fail("fields", "rules for image_url or thumbnail_url", "neither")
    filters = check.mapping(data.get("filters", {}), "filters", set(FILTER_NAMES))
    table = {}
    for name, values in filters.items():
        values = check.mapping(values, f"filters.{name}")
        table[name] = {}
        for value, params in values.items():
            params = check.mapping(params, f"filters.{name}.{value}")
            for parameter, part in params.items():
                if not isinstance(part, str):
                    check.fail(f"filters.{name}.{value}.{parameter}", "a string", type(part).__name__)
            table[name][value] = dict(params)
    parameters = check.mapping(data.get("parameters", {}), "parameters")
    for parameter, separator in parameters.items():
        if not isinstance(separator, str):
            check.fail(f"parameters.{parameter}", "a separator string", type(separator).__name__)
    more = check.mapping(data.get("more") or {}, "more", MORE_KEYS)
    preview = data.get("preview")
    if preview is not None:
        check.mapping(preview, "preview", PREVIEW_KEYS)
        reject = check.list(preview, "reject") if "reject" in preview else []
        if not all(isinstance(r, str) and r for r in reject):
            check.fail("preview.reject", "a list of non-empty strings", reject)
        preview = Preview(
            click=check.text(preview, "click", "preview", empty=True),
            image=check.text(preview, "image", "preview"),
            attribute=check.text(preview, "attribute", "preview") if "attribute" in preview else "src",
            wait=check.seconds(preview, "wait", "preview", 4.0),
            reject=tuple(reject),
        )
    return EngineProfile(
        name=check.text(data, "name"),
        path=path,
        search_url=search_url,
        results=check.text(data, "results"),
        no_results=check.text(data, "no_results"),
        fields=rules,
        filters=table,
        parameters=dict(parameters),
        consent=check.optional_text(data, "consent"),
        blocked=check.optional_text(data, "blocked"),
        preview=preview,
        more_button=check.optional_text(more, "button", "more"),
        more_wait=check.seconds(more, "wait", "more", 1.5),
        description=check.optional_text(data, "description") or "",
    )


class _Checker:
    """Type checks that raise one-line FormatErrors naming the profile file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, expected: str, actual: object) -> None:
        raise FormatError(f"engine profile: bad {where}", path=self.path, expected=expected, actual=_short(actual))

    def required(self, parent: dict, key: str) -> Any:
        if key not in parent:
            raise FormatError(f"engine profile: missing key '{key}'", path=self.path)
        return parent[key]

    def mapping(self, value: Any, where: str, allowed: set[str] | None = None) -> dict:
        """``value`` must be a JSON object (``where`` names it; "" is the whole profile) with keys among ``allowed``."""
        if not isinstance(value, dict):
            if not where:
                raise FormatError(
                    "not an engine profile", path=self.path, expected="a JSON object", actual=type(value).__name__
                )
            self.fail(where, "a JSON object", type(value).__name__)
        if allowed is not None:
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise FormatError(
                    f"engine profile: unknown key '{unknown[0]}'" + (f" in {where}" if where else ""),
                    path=self.path,
                    expected=f"keys among {', '.join(sorted(allowed))}",
                )
        return value

    def list(self, parent: dict, key: str) -> list:
        value = parent[key]
        if not isinstance(value, list):
            self.fail(key, "a JSON list", type(value).__name__)
        return value

    def text(self, parent: dict, key: str, where: str = "", *, empty: bool = False) -> str:
        name = f"{where}.{key}" if where else key
        if key not in parent:
            raise FormatError(f"engine profile: missing key '{name}'", path=self.path)
        value = parent[key]
        if not isinstance(value, str) or (not empty and not value.strip()):
            self.fail(name, "a non-empty string" if not empty else "a string", value)
        return value

    def optional_text(self, parent: dict, key: str, where: str = "") -> str | None:
        if parent.get(key) is None:
            return None
        return self.text(parent, key, where)

    def seconds(self, parent: dict, key: str, where: str, default: float) -> float:
        value = parent.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 120:
            self.fail(f"{where}.{key}", "seconds between 0 and 120", value)
        return float(value)

    def rule(self, value: Any, where: str) -> Rule:
        self.mapping(value, where, RULE_KEYS)
        for key in RULE_KEYS:
            if key in value and value[key] is not None and not isinstance(value[key], str):
                self.fail(f"{where}.{key}", "a string", type(value[key]).__name__)
        rule = Rule(
            selector=value.get("selector") or "",
            attribute=value.get("attribute") or "textContent",
            json=value.get("json"),
            query_param=value.get("query_param"),
        )
        if rule.json and rule.query_param:
            self.fail(where, "json or query_param, not both", "both")
        return rule


def _short(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
