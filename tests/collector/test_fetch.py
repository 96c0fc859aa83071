"""Fetching one URL (seg.collector.fetch) against real HTTP on 127.0.0.1: addresses, redirects, caps, retries, rate."""

from __future__ import annotations

import base64
import gzip
import time

import pytest

from seg.collector import fetch as fetch_module
from seg.collector.download import DownloadError, DownloadOptions
from seg.collector.fetch import (
    HostRateLimiter,
    address_blocked,
    backoff,
    check_host,
    decode_data_url,
    fetch,
    make_session,
    retry_after,
)
from tests.collector.loopback import Reply, serve

BODY = b"\x89PNG pretend image bytes" * 10


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(fetch_module, "BACKOFF", 0.01)


def get(url: str, **options) -> bytes:
    opts = DownloadOptions(**{"allow_private": True, "host_rate": 0, **options})
    with make_session(opts) as session:
        return fetch(session, url, opts, HostRateLimiter(opts.host_rate))


def refused(url: str, **options) -> DownloadError:
    with pytest.raises(DownloadError) as caught:
        get(url, **options)
    return caught.value


def sequence(*replies: Reply):
    """A route answering with ``replies`` in turn, then repeating the last one."""
    calls = []

    def route(handler):
        calls.append(handler.path)
        return replies[min(len(calls), len(replies)) - 1]

    return route


# -- addresses -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "not an address",
    ],
)
def test_non_public_addresses_are_blocked(address):
    assert address_blocked(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    assert not address_blocked(address)


def test_check_host_resolves_names_and_blocks_if_any_address_is_private(monkeypatch):
    with pytest.raises(DownloadError) as caught:
        check_host("localhost", 80)
    assert caught.value.status == "blocked"
    monkeypatch.setattr(fetch_module, "resolve", lambda host, port: ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(DownloadError) as caught:
        check_host("mixed.example", 80)
    assert caught.value.status == "blocked" and "10.0.0.7" in str(caught.value)
    monkeypatch.setattr(fetch_module, "resolve", lambda host, port: ["93.184.216.34"])
    check_host("public.example", 443)


def test_unknown_hosts_are_final_and_failed_lookups_are_tried_again(monkeypatch):
    import socket

    calls = []

    def lookup(code):
        def resolve(host, port):
            calls.append(host)
            raise socket.gaierror(code, "lookup failed")

        return resolve

    monkeypatch.setattr(fetch_module, "resolve", lookup(socket.EAI_NONAME))
    assert refused("http://gone.example/a.jpg", allow_private=False).status == "unknown_host"
    assert len(calls) == 1
    monkeypatch.setattr(fetch_module, "resolve", lookup(socket.EAI_AGAIN))
    assert refused("http://slow-dns.example/a.jpg", allow_private=False, retries=2).status == "error"
    assert len(calls) == 4


def test_loopback_first_hop_is_refused_without_any_request():
    with serve({"/a.png": Reply(BODY)}) as server:
        for url in (f"{server.url}/a.png", f"http://localhost:{server.server_address[1]}/a.png"):
            assert refused(url, allow_private=False).status == "blocked"
        assert get(f"{server.url}/a.png") == BODY
        assert len(server.requests) == 1


def test_a_redirect_to_a_blocked_address_is_refused(monkeypatch):
    # Pretend that 127.0.0.1 is public and only 127.0.0.2 is not, so the first hop passes and the second is checked.
    monkeypatch.setattr(fetch_module, "address_blocked", lambda address: address == "127.0.0.2")
    with serve({}) as server:
        port = server.server_address[1]
        server.routes["/start"] = Reply(status=302, headers={"Location": f"http://127.0.0.2:{port}/inside"})
        server.routes["/ok"] = Reply(BODY)
        error = refused(f"{server.url}/start", allow_private=False)
        assert error.status == "blocked" and "127.0.0.2" in str(error)
        assert [path for path, _ in server.requests] == ["/start"]
        assert get(f"{server.url}/ok", allow_private=False) == BODY


def test_dns_rebinding_is_caught_at_connection(monkeypatch):
    # The check's lookup says "public", the connection lands on loopback: refused before any byte is sent.
    monkeypatch.setattr(fetch_module, "resolve", lambda host, port: ["93.184.216.34"])
    with serve({"/a.png": Reply(BODY)}) as server:
        error = refused(f"{server.url}/a.png", allow_private=False)
        assert error.status == "blocked" and "connected to non-public address 127.0.0.1" in str(error)
        assert server.requests == []


# -- schemes, redirects ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/a.jpg", "javascript:alert(1)", "", "about:blank", "http:///no-host"],
)
def test_non_http_schemes_are_refused(url):
    assert refused(url).status == "bad_url"


def test_redirect_chains_are_followed_up_to_five_hops():
    routes = {f"/r{i}": Reply(status=301 + i % 3, headers={"Location": f"/r{i + 1}"}) for i in range(6)}
    routes["/r5"] = Reply(BODY)
    routes["/r6"] = Reply(BODY)
    with serve(routes) as server:
        assert get(f"{server.url}/r0") == BODY
        assert len(server.requests) == 6
        server.routes["/r5"] = Reply(status=307, headers={"Location": "/r6"})
        error = refused(f"{server.url}/r0")
        assert error.status == "too_many_redirects" and len(server.requests) == 12


def test_a_redirect_loop_and_bad_locations_are_refused():
    with serve({}) as server:
        server.routes["/loop"] = Reply(status=302, headers={"Location": f"{server.url}/loop"})
        server.routes["/ftp"] = Reply(status=302, headers={"Location": "ftp://example.com/a.jpg"})
        server.routes["/none"] = Reply(status=302)
        assert refused(f"{server.url}/loop").status == "too_many_redirects"
        assert refused(f"{server.url}/ftp").status == "bad_url"
        assert refused(f"{server.url}/none").status == "http_302"
        assert [path for path, _ in server.requests].count("/none") == 1


# -- size cap ------------------------------------------------------------------------------------------------------


def test_size_cap_with_honest_absent_and_compressed_lengths():
    big = bytes(range(256)) * 400  # 102,400 bytes
    routes = {
        "/honest": Reply(big),
        "/absent": Reply(big, headers={"Content-Length": ""}),  # read to the end of the connection
        "/gzip": Reply(gzip.compress(big), headers={"Content-Encoding": "gzip"}),  # small on the wire
        "/fits": Reply(big),
    }
    with serve(routes) as server:
        for path in ("/honest", "/absent", "/gzip"):
            error = refused(f"{server.url}{path}", max_bytes=50_000)
            assert error.status == "too_large", path
        assert get(f"{server.url}/absent", max_bytes=len(big)) == big
        assert get(f"{server.url}/gzip", max_bytes=len(big)) == big


# -- retries and rate --------------------------------------------------------------------------------------------------


def test_transient_failures_are_tried_again_and_permanent_ones_are_not():
    flaky = sequence(Reply(status=503), Reply(status=503, headers={"Retry-After": "0"}), Reply(BODY))
    always = sequence(Reply(status=500))
    with serve({"/flaky": flaky, "/always": always, "/limited": sequence(Reply(status=429), Reply(BODY))}) as server:
        assert get(f"{server.url}/flaky") == BODY
        assert get(f"{server.url}/limited") == BODY
        assert refused(f"{server.url}/missing").status == "http_404"
        assert refused(f"{server.url}/always", retries=2).status == "http_500"
        paths = [path for path, _ in server.requests]
        assert paths.count("/flaky") == 3 and paths.count("/limited") == 2
        assert paths.count("/missing") == 1 and paths.count("/always") == 3


def test_retry_after_is_honoured_and_a_long_one_gives_up():
    with serve({}) as server:
        server.routes["/wait"] = sequence(Reply(status=503, headers={"Retry-After": "1"}), Reply(BODY))
        server.routes["/later"] = Reply(status=429, headers={"Retry-After": "3600"})
        start = time.monotonic()
        assert get(f"{server.url}/wait") == BODY
        assert time.monotonic() - start >= 1.0
        assert refused(f"{server.url}/later").status == "http_429"
        assert [path for path, _ in server.requests].count("/later") == 1


def test_timeouts_are_errors_tried_again():
    def slow(handler):
        time.sleep(0.6)
        return Reply(BODY)

    with serve({"/slow": slow}) as server:
        error = refused(f"{server.url}/slow", timeout=0.2, retries=1)
        assert error.status == "error" and "timed out" in str(error)
        assert len(server.requests) == 2


def test_requests_to_one_host_are_spaced_by_the_rate():
    limiter = HostRateLimiter(20.0)
    start = time.monotonic()
    for _ in range(6):
        limiter.wait("example.com")
    limiter.wait("other.example")
    assert time.monotonic() - start >= 5 / 20.0
    unlimited = HostRateLimiter(0)
    start = time.monotonic()
    for _ in range(1000):
        unlimited.wait("example.com")
    assert time.monotonic() - start < 1.0


def test_the_user_agent_and_accept_headers_are_sent():
    with serve({"/a.png": Reply(BODY)}) as server:
        get(f"{server.url}/a.png", user_agent="seg-test/1")
        headers = server.requests[0][1]
        assert headers["User-Agent"] == "seg-test/1" and "image/" in headers["Accept"]


# -- helpers -------------------------------------------------------------------------------------------------------


def test_data_urls_are_decoded_locally():
    payload = base64.b64encode(BODY).decode()
    assert decode_data_url(f"data:image/png;base64,{payload}", 10_000) == BODY
    assert decode_data_url(f"data:image/png;base64,{payload.rstrip('=')}\n", 10_000) == BODY
    assert get(f"DATA:image/jpeg;base64,{payload}") == BODY
    for url in ("data:text/html;base64,PGh0bWw+", "data:image/png,rawbytes", "data:image/png;base64,@@@@"):
        with pytest.raises(DownloadError) as caught:
            decode_data_url(url, 10_000)
        assert caught.value.status == "bad_url", url
    with pytest.raises(DownloadError) as caught:
        decode_data_url(f"data:image/png;base64,{payload}", 100)
    assert caught.value.status == "too_large"


def test_retry_after_and_backoff_values():
    assert retry_after("7") == 7.0 and retry_after(None) is None and retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert backoff(0, 2.0) == 2.0 and backoff(0, 3600.0) is None
    delays = [backoff(3, None) for _ in range(50)]
    assert all(0.5 * 8 * fetch_module.BACKOFF <= d < 1.5 * 8 * fetch_module.BACKOFF for d in delays)
    assert len(set(delays)) > 1
