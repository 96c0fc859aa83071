"""The Label Studio client's error mapping and retries, against a mock transport (no server needed)."""

from __future__ import annotations

import logging

import httpx
import pytest

from seg.annotate.client import Client, connect, display_url, normalize_url, server_message
from seg.annotate.errors import (
    AuthError,
    NotFoundError,
    RequestError,
    ServerError,
    ServerTimeoutError,
    UnreachableError,
)
from seg.errors import OptionError, SegError

KEY = "feedfacefeedfacefeedfacefeedfacefeedface"
URL = "http://ls.test:8080"
WHOAMI = {"id": 1, "email": "a@b.c", "username": "a"}


def mock_client(handler, *, retries: int = 3) -> tuple[Client, list[float]]:
    delays: list[float] = []
    http = httpx.Client(transport=httpx.MockTransport(handler), timeout=5)
    return Client(URL, KEY, retries=retries, sleep=delays.append, http=http), delays


def test_connect_checks_the_key_and_sends_it_as_a_token():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers.get("authorization")))
        return httpx.Response(200, json=WHOAMI)

    client = connect(URL, KEY, http=httpx.Client(transport=httpx.MockTransport(handler)))
    assert seen == [("/api/current-user/whoami", f"Token {KEY}")]
    assert KEY not in repr(client)


def test_refused_key_says_so_without_the_key(caplog):
    def handler(request):
        return httpx.Response(401, json={"detail": "Invalid token.", "status_code": 401}, headers={"set-cookie": "s=1"})

    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as info:
        connect(URL, KEY, http=httpx.Client(transport=httpx.MockTransport(handler)))
    message = str(info.value)
    assert message.startswith("the API key was refused by Label Studio at http://ls.test:8080")
    assert "Invalid token." in message and "\n" not in message
    assert KEY not in message and KEY not in caplog.text
    assert "set-cookie" not in str(info.value.__cause__)  # the chained cause drops response headers
    assert info.value.status == 401


def test_a_server_echoing_the_key_is_redacted():
    def handler(request):
        return httpx.Response(400, json={"detail": f"bad token {KEY}"})

    client, _ = mock_client(handler)
    with pytest.raises(RequestError) as info:
        client.whoami()
    assert KEY not in str(info.value) and "***" in str(info.value)


def test_no_key_is_an_auth_error():
    with pytest.raises(AuthError, match="no API key"):
        connect(URL, "")


@pytest.mark.parametrize("url", ["ftp://x", "127.0.0.1:8080", "", "http://"])
def test_bad_urls_are_usage_errors(url):
    with pytest.raises(OptionError):
        normalize_url(url)


def test_display_url_hides_credentials():
    assert display_url("http://user:pw@host:8080/ls/?x=1") == "http://host:8080/ls"


def test_safe_calls_retry_server_errors_with_exponential_backoff():
    calls = []

    def handler(request):
        calls.append(request.method)
        if len(calls) < 4:
            return httpx.Response(503, text="<html>busy</html>")
        return httpx.Response(200, json=WHOAMI)

    client, delays = mock_client(handler)
    assert client.whoami()["email"] == "a@b.c"
    assert delays == [0.5, 1.0, 2.0]


def test_safe_calls_give_up_after_the_retries():
    client, delays = mock_client(lambda request: httpx.Response(500, json={"detail": "boom"}), retries=2)
    with pytest.raises(ServerError) as info:
        client.whoami()
    assert type(info.value) is ServerError
    assert "HTTP 500" in str(info.value) and "boom" in str(info.value)
    assert delays == [0.5, 1.0]


def test_unsafe_calls_are_not_retried_after_a_server_error():
    calls = []

    def handler(request):
        calls.append(request.method)
        return httpx.Response(500, json={})

    client, delays = mock_client(handler)
    with pytest.raises(ServerError):
        client.request("POST", "api/projects/1/import", what="importing", json=[{"image": "x"}])
    assert calls == ["POST"] and delays == []


def test_refused_connections_are_retried_even_for_posts_then_reported():
    calls = []

    def handler(request):
        calls.append(request.method)
        raise httpx.ConnectError("refused", request=request)

    client, delays = mock_client(handler, retries=2)
    with pytest.raises(UnreachableError) as info:
        client.request("POST", "api/projects", what="creating", json={})
    assert str(info.value) == "cannot reach Label Studio at http://ls.test:8080: is it running?"
    assert len(calls) == 3 and delays == [0.5, 1.0]


def test_timeouts_name_the_call_and_are_retried_only_when_safe():
    def handler(request):
        raise httpx.ReadTimeout("slow", request=request)

    client, delays = mock_client(handler, retries=1)
    with pytest.raises(ServerTimeoutError, match="did not answer within 30 s while reading x"):
        client.request("GET", "api/x", what="reading x")
    assert delays == [0.5]
    delays.clear()
    with pytest.raises(ServerTimeoutError):
        client.request("POST", "api/x", what="writing x")
    assert delays == []


def test_bad_requests_carry_the_servers_explanation():
    body = {
        "detail": "Validation error",
        "validation_errors": {"title": ["Ensure this field has at least 3 characters."]},
    }
    client, _ = mock_client(lambda request: httpx.Response(400, json=body))
    with pytest.raises(RequestError) as info:
        client.call("creating project 'x'", client.sdk.projects.create, title="x", label_config="<View/>")
    assert str(info.value) == (
        "Label Studio at http://ls.test:8080 refused creating project 'x' (HTTP 400) "
        "(server: title: Ensure this field has at least 3 characters.)"
    )


def test_not_found_and_forbidden():
    client, _ = mock_client(lambda request: httpx.Response(404, json={"detail": "Not found."}))
    with pytest.raises(NotFoundError, match="not found while reading project 9"):
        client.call("reading project 9", client.sdk.projects.get, 9, safe=True)
    client, _ = mock_client(lambda request: httpx.Response(403, json={"detail": "nope"}))
    with pytest.raises(AuthError, match="denied permission"):
        client.whoami()


def test_an_html_page_is_not_label_studio():
    client, _ = mock_client(lambda request: httpx.Response(200, text="<html>router login</html>"))
    with pytest.raises(ServerError, match="is this Label Studio's URL"):
        client.get_json("api/version", what="reading the version")
    with pytest.raises(ServerError, match="cannot read"):
        client.whoami()


def test_the_token_goes_only_to_the_servers_origin():
    seen = {}

    def handler(request):
        seen[request.url.host] = request.headers.get("authorization")
        return httpx.Response(200, content=b"png", headers={"content-type": "image/png"})

    client, _ = mock_client(handler)
    client.request("GET", "/data/upload/1/a.png", what="fetching")
    client.request("GET", "http://elsewhere.test/a.png", what="fetching")
    assert seen == {"ls.test": f"Token {KEY}", "elsewhere.test": None}


def test_relative_paths_stay_under_a_server_prefix():
    seen = []

    def handler(request):
        seen.append(str(request.url))
        return httpx.Response(200, json={})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = Client("http://ls.test/label-studio/", KEY, http=http)
    client.request("GET", "api/version", what="x")
    client.request("GET", "/label-studio/data/upload/a.png", what="x")
    assert seen == ["http://ls.test/label-studio/api/version", "http://ls.test/label-studio/data/upload/a.png"]


def test_other_exceptions_pass_through():
    client, _ = mock_client(lambda request: httpx.Response(200, json={}))

    def broken():
        raise KeyError("ours")

    with pytest.raises(KeyError):
        client.call("x", broken)


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"detail": "Invalid token."}, "Invalid token."),
        ({"validation_errors": {"non_field_errors": ['path "/x" does not exist']}}, 'path "/x" does not exist'),
        (["a", "b"], "a; b"),
        ("<!doctype html><h1>500</h1>", ""),
        ("plain   text\nhere", "plain text here"),
        (None, ""),
        ({"detail": "x" * 500}, "x" * 299 + "…"),
    ],
)
def test_server_message(body, text):
    assert server_message(body) == text


def test_errors_are_seg_errors():
    for cls in (ServerError, UnreachableError, ServerTimeoutError, AuthError, RequestError, NotFoundError):
        assert issubclass(cls, SegError)
