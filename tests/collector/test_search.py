"""Engine profiles and the search loop: real headless Chromium against loopback Google and Bing result pages.

The shipped profiles are used as they are, with only their origin pointed at the loopback server. One browser and
one server per engine serve the whole module; each test sets the page ``mode`` it needs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seg.cli_collect_search import FILTER_HELP
from seg.collector.browser import open_browser
from seg.collector.engine_profile import Rule, load_profile, parse_profile, shipped_profile_path, shipped_profiles
from seg.collector.search import (
    EngineBlockedError,
    EngineLayoutError,
    NoResultsError,
    _clean_text,
    _first_value,
    _Search,
    search,
)
from seg.errors import FormatError, OptionError, SegError
from tests.collector.engine_pages import EngineSite, make_results, profile_for, require_chromium
from tests.collector.loopback import serve

QUERY = "red kite"


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    require_chromium()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        with open_browser() as browser:
            yield browser


def _site(engine: str, tmp_path_factory, **kwargs):
    site = EngineSite(engine, make_results(14, **kwargs), page_size=5, consent=True)
    with serve(site.routes()) as server:
        profile = load_profile(profile_for(engine, server.url, tmp_path_factory.mktemp(engine)))
        yield site, server, profile


@pytest.fixture(scope="module")
def google_module(tmp_path_factory):
    yield from _site("google", tmp_path_factory, no_preview=(7,))


@pytest.fixture(scope="module")
def bing_module(tmp_path_factory):
    yield from _site("bing", tmp_path_factory)


@pytest.fixture
def google(google_module):
    site, server, profile = google_module
    site.mode = "results"
    server.requests.clear()
    return site, server, profile


@pytest.fixture
def bing(bing_module):
    site, server, profile = bing_module
    site.mode = "results"
    server.requests.clear()
    return site, server, profile


def page_requests(server) -> list[str]:
    return [path for path, _ in server.requests if "/img/" not in path and "/pages/" not in path]


# -- Google ----------------------------------------------------------------------------------------------------------


def test_google_full_size_urls_through_the_preview_across_scroll_and_more_button(google, driver, caplog):
    site, server, profile = google
    with caplog.at_level(logging.WARNING, logger="seg.collector.search"):
        found = list(search(profile, QUERY, driver=driver, timeout=5))
    assert [c.rank for c in found] == list(range(14))
    assert {c.engine for c in found} == {"google"} and {c.query for c in found} == {QUERY}
    for candidate, result in zip(found, site.results, strict=True):
        assert candidate.page_url == server.url + result.page_path
        assert candidate.title == result.title
        assert candidate.licence == ""
        if result.preview_ok:
            assert candidate.image_url == server.url + result.full_path
            assert candidate.thumbnail_url.startswith("data:image/png;base64," if result.index < 2 else server.url)
        else:  # the preview never showed a full-size URL: the thumbnail stands in, said once
            assert candidate.image_url == server.url + result.thumb_path
            assert candidate.thumbnail_url == ""
    assert sum("thumbnails are used instead" in r.getMessage() for r in caplog.records) == 1
    requests = page_requests(server)
    assert requests[0].startswith("/search?q=red+kite&udm=2")
    assert any("page=1" in r for r in requests) and any("page=2" in r for r in requests)  # scroll, then the button
    assert driver.find_elements("id", "consent") == []  # the consent overlay was dismissed, not clicked through


def test_google_limit_stops_before_loading_more_and_search_is_lazy(google, driver):
    _, server, profile = google
    found = search(profile, QUERY, driver=driver, limit=3, timeout=5)
    assert server.requests == []  # nothing happens before the first pull
    assert len(list(found)) == 3
    assert not any("/async/" in r for r in page_requests(server))


def test_google_filters_go_into_the_url_and_rights_into_the_licence(google, driver):
    _, server, profile = google
    filters = {"size": "large", "type": "photo", "colour": "gray", "rights": "creative-commons", "safe": "on"}
    found = list(search(profile, QUERY, driver=driver, limit=2, filters=filters, timeout=5))
    url = page_requests(server)[0]
    assert "tbs=isz:l,itp:photo,ic:gray,il:cl" in url and "safe=active" in url
    assert [c.licence for c in found] == ["creative-commons"] * 2


def test_google_changed_layout_names_the_profile(google, driver):
    site, _, profile = google
    site.mode = "renamed"
    with pytest.raises(EngineLayoutError) as caught:
        list(search(profile, QUERY, driver=driver, timeout=1))
    message = str(caught.value)
    assert message.startswith(str(profile.path) + ": ")
    assert "no results matched selector 'div.eA0Zlc' for query 'red kite'" in message
    assert "layout has likely changed: check the profile" in message and "\n" not in message


def test_google_no_results_page_is_not_a_layout_change(google, driver):
    site, _, profile = google
    site.mode = "empty"
    with pytest.raises(NoResultsError) as caught:
        list(search(profile, "qwxzv kite", driver=driver, timeout=5))
    assert not isinstance(caught.value, EngineLayoutError)
    assert "engine 'google' found no images for query 'qwxzv kite'" in str(caught.value)


def test_google_captcha_page(google, driver):
    site, _, profile = google
    site.mode = "captcha"
    with pytest.raises(EngineBlockedError, match="captcha"):
        list(search(profile, QUERY, driver=driver, timeout=5))


def test_results_without_any_image_url_are_a_layout_change(google, driver, tmp_path):
    _, _, profile = google
    data = json.loads(profile.path.read_text())
    data["fields"]["image_url"] = [{"attribute": "data-gone"}]
    data["fields"]["thumbnail_url"] = [{"selector": "img", "attribute": "data-gone"}]
    data["preview"] = None
    broken = parse_profile(data, tmp_path / "broken.json")
    with pytest.raises(EngineLayoutError, match=r"14 results matched selector 'div.eA0Zlc'.*none gave an image URL"):
        list(search(broken, QUERY, driver=driver, timeout=5))


def test_an_invalid_css_selector_names_its_key(google, driver, tmp_path):
    _, _, profile = google
    data = json.loads(profile.path.read_text())
    data["fields"]["title"][0]["selector"] = "div >> p"
    broken = parse_profile(data, tmp_path / "typo.json")
    with pytest.raises(FormatError, match=r"typo.json: .*invalid CSS selector 'div >> p' at fields.title\[0\]"):
        list(search(broken, QUERY, driver=driver, timeout=5))


def test_an_unreachable_engine_is_not_called_a_layout_change(driver, tmp_path):
    with serve({}) as server:
        closed = server.url  # nothing listens there once the block ends
    profile = load_profile(profile_for("google", closed, tmp_path))
    with pytest.raises(SegError, match=r"could not load the results page http://127\.0\.0\.1") as caught:
        list(search(profile, QUERY, driver=driver, timeout=2))
    assert not isinstance(caught.value, EngineLayoutError)


# -- Bing ------------------------------------------------------------------------------------------------------------


def test_bing_reads_the_m_json_across_scroll_and_see_more(bing, driver):
    site, server, profile = bing
    found = list(search(profile, QUERY, driver=driver, timeout=5))
    assert len(found) == 14
    for candidate, result in zip(found, site.results, strict=True):
        assert candidate.image_url == server.url + result.full_path
        assert candidate.thumbnail_url == server.url + result.thumb_path
        assert candidate.page_url == server.url + result.page_path
        assert candidate.title == result.title  # Bing's U+E000/U+E001 highlight marks removed
        assert candidate.engine == "bing"
    requests = page_requests(server)
    assert any("/images/async" in r and "page=1" in r for r in requests)
    assert any("/images/async" in r and "page=2" in r for r in requests)


def test_bing_filters_in_the_url(bing, driver):
    _, server, profile = bing
    filters = {"size": "large", "colour": "gray", "rights": "public-domain", "safe": "on"}
    list(search(profile, QUERY, driver=driver, limit=1, filters=filters, timeout=5))
    url = page_requests(server)[0]
    assert "qft=+filterui:imagesize-large+filterui:color2-bw+filterui:license-L1" in url and "adlt=strict" in url


def test_bing_changed_layout_and_no_results(bing, driver):
    site, _, profile = bing
    site.mode = "renamed"
    with pytest.raises(EngineLayoutError, match=r"bing-loopback.json: no results matched selector 'div.imgpt'"):
        list(search(profile, QUERY, driver=driver, timeout=1))
    site.mode = "empty"
    with pytest.raises(NoResultsError, match="engine 'bing' found no images"):
        list(search(profile, QUERY, driver=driver, timeout=5))


# -- profiles (no browser) -------------------------------------------------------------------------------------------


def test_shipped_profiles_load_and_offer_the_documented_filters():
    assert shipped_profiles() == ["bing", "google"]
    for name in shipped_profiles():
        profile = load_profile(shipped_profile_path(name))
        assert profile.name == name
        for filter_name, values in FILTER_HELP.items():
            assert set(values) <= set(profile.filter_values(filter_name)), (name, filter_name)


@given(st.text(min_size=1, max_size=40).filter(lambda q: q.strip()))
def test_the_query_survives_url_encoding(query):
    profile = load_profile(shipped_profile_path("google"))
    url = profile.url_for(query, {"size": "large", "colour": "red"})
    params = parse_qs(urlsplit(url).query, keep_blank_values=True)
    assert params["q"] == [query]
    assert params["tbs"] == ["isz:l,ic:specific,isc:red"]


def test_unknown_filter_value_is_an_option_error_raised_at_once():
    profile = load_profile(shipped_profile_path("google"))
    with pytest.raises(OptionError) as caught:
        search(profile, QUERY, driver=None, filters={"size": "huge"})  # no browser needed: raised before any pull
    message = str(caught.value)
    assert message.startswith(str(profile.path)) and "no size filter 'huge'" in message
    assert "large, medium, icon" in message
    with pytest.raises(OptionError, match="no rights filter 'public-domain'"):
        profile.url_for(QUERY, {"rights": "public-domain"})  # Bing has it, Google does not


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.json"
    path.write_text(text)
    return path


def shipped(name: str = "google") -> dict:
    return json.loads(shipped_profile_path(name).read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("results"), "missing key 'results'"),
        (lambda d: d.update(result="div.x"), "engine profile: unknown key 'result' (expected keys among"),
        (lambda d: d.pop("fields"), "missing key 'fields'"),
        (lambda d: d.update(results=["div.x"]), "bad results"),
        (lambda d: d.update(no_results=""), "bad no_results"),
        (lambda d: d.update(search_url="https://example.com/search?q=cats"), "bad search_url"),
        (lambda d: d.update(search_url="file:///etc/passwd?{query}"), "bad search_url"),
        (lambda d: d["fields"].update(image_url=[], thumbnail_url=[]), "rules for image_url or thumbnail_url"),
        (lambda d: d["fields"].update(image_url={"attribute": "src"}), "bad image_url"),
        (lambda d: d["fields"]["page_url"][0].update(json="a", query_param="b"), "json or query_param"),
        (lambda d: d["fields"]["title"][0].update(selektor="div"), "unknown key 'selektor'"),
        (lambda d: d["fields"].update(colour=[]), "unknown key 'colour' in fields"),
        (lambda d: d["filters"].update(color={}), "unknown key 'color' in filters"),
        (lambda d: d["filters"]["size"].update(large={"tbs": 1}), "bad filters.size.large.tbs"),
        (lambda d: d["preview"].update(wait="soon"), "bad preview.wait"),
        (lambda d: d["preview"].pop("image"), "missing key 'preview.image'"),
        (lambda d: d["more"].update(wait=1e9), "bad more.wait"),
    ],
)
def test_malformed_profiles_name_the_file_and_the_key(tmp_path, change, message):
    data = shipped()
    change(data)
    path = write(tmp_path, json.dumps(data))
    with pytest.raises(FormatError) as caught:
        load_profile(path)
    assert str(caught.value).startswith(str(path) + ": ")
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"name": "google", ', "malformed JSON at line 1"),
        ("[1, 2]", r"not an engine profile \(expected a JSON object, got list\)"),
        ("", "malformed JSON"),
        ('"\\ud800"', "not an engine profile"),
    ],
)
def test_broken_profile_files(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(FormatError, match=message) as caught:
        load_profile(path)
    assert str(path) in str(caught.value)


def test_missing_profile_file(tmp_path):
    with pytest.raises(FormatError, match="cannot read file"):
        load_profile(tmp_path / "nope.json")


def test_rules_decode_json_and_url_parameters_and_resolve_relative_urls():
    base = "https://www.bing.com/images/search?q=kite"
    json_rule = Rule("a.iusc", "m", json="murl")
    raw = [json.dumps({"murl": "https://img.example/kite.jpg"})]
    assert _first_value((json_rule,), raw, base) == "https://img.example/kite.jpg"
    # broken JSON, a missing key, then a URL parameter, then a relative data-src
    rules = (json_rule, json_rule, Rule("a", "href", query_param="mediaurl"), Rule("img", "data-src"))
    assert _first_value(
        rules, ["{not json", "{}", "/images/search?mediaurl=https%3A%2F%2Fa.example%2Fk.png", None], base
    ) == ("https://a.example/k.png")
    assert _first_value(rules, [None, None, "/x?other=1", "/th?id=OIP.1"], base) == "https://www.bing.com/th?id=OIP.1"
    assert _first_value((Rule("img", "src"),), ["data:image/png;base64,AAAA"], base) == "data:image/png;base64,AAAA"
    assert _first_value((Rule("div", "textContent"),), ["   "], base) == ""
    assert _first_value((Rule("a", "m", json="t"),), ['{"t": "kite/red"}'], None) == "kite/red"  # not a URL field


def test_titles_lose_highlight_marks_and_extra_whitespace():
    assert _clean_text("\ue000Red\ue001 kite\n  over  the hills ") == "Red kite over the hills"


class _StubDriver:
    current_url = "https://www.bing.com/images/search?q=kite"


@pytest.mark.parametrize("hostile", ["file:///etc/passwd", "javascript:alert(1)", "ftp://x.example/a.jpg", ""])
def test_hostile_urls_in_a_result_never_become_image_or_page_urls(hostile):
    profile = load_profile(shipped_profile_path("bing"))
    walk = _Search(profile, QUERY, _StubDriver(), "", "", 1.0)
    meta = json.dumps({"murl": hostile, "purl": hostile, "turl": "/th?id=OIP.1", "t": "kite"})
    row = {"image_url": [meta, None], "thumbnail_url": [meta, None, None], "page_url": [meta], "title": [meta, None]}
    candidate = walk._candidate(0, row)
    assert candidate.image_url == "https://www.bing.com/th?id=OIP.1" and candidate.thumbnail_url == ""
    assert candidate.page_url == ""
    nothing = {"image_url": [meta, None], "thumbnail_url": [json.dumps({"turl": hostile}), None, None]}
    assert walk._candidate(1, nothing) is None
