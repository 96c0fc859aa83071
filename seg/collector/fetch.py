"""Fetching one image URL politely and safely: schemes, address checks, redirects, size cap, retries, host rate.

* Only ``http`` and ``https`` go on the network; ``data:image/...;base64,`` URLs are decoded locally; anything else is
  ``bad_url``.
* Unless ``allow_private``, a host is refused (``blocked``) when ANY address it resolves to is not a public unicast
  address (loopback, private, link-local, multicast, reserved, unspecified, carrier-grade NAT...). The check runs on
  the first URL and on every redirect hop (redirects are followed by hand, at most :data:`MAX_REDIRECTS`). DNS
  rebinding (a name that resolves to a public address for the check and to a private one for the connection) is
  closed too: the connection classes check the address actually connected to before sending anything.
* A body larger than ``max_bytes`` is refused from its Content-Length, and streaming stops as soon as it passes the
  cap when the length is absent or lies (``too_large``).
* Timeouts, connection errors, 408/425/429 and 5xx are tried again ``retries`` times with exponential backoff and
  jitter, or after the server's ``Retry-After`` (up to :data:`MAX_RETRY_AFTER` seconds; a longer wait gives up).
* Each attempt and each redirect hop first waits for its host's turn (:class:`HostRateLimiter`).

Proxies and credentials from the environment (``HTTP_PROXY``, ``.netrc``) are not used.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import ipaddress
import logging
import random
import re
import socket
import threading
import time
from datetime import UTC, datetime
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from seg.collector.download import DownloadError, DownloadOptions
from seg.collector.manifest import is_final

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Longest ``Retry-After`` honoured (seconds); a server asking for more is given up on for this run.
MAX_RETRY_AFTER = 60.0
#: First backoff delay (seconds); attempt ``n`` waits ``BACKOFF * 2**n`` times a jitter factor in [0.5, 1.5).
BACKOFF = 0.5
#: A response body must arrive within this many ``timeout``s (the read timeout alone only bounds each pause).
BODY_TIME_FACTOR = 3
CHUNK = 64 * 1024
ACCEPT = "image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8,*/*;q=0.5"


def address_blocked(address: str) -> bool:
    """True for any IP address that is not a public unicast address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        not ip.is_global
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (``socket.getaddrinfo``)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def check_host(host: str, port: int) -> None:
    """Refuse ``host`` (``blocked``) when any address it resolves to is not public.

    A name that does not exist is ``unknown_host`` (final); a failed lookup (no DNS answer in time) is ``error``.
    """
    try:
        addresses = resolve(host, port)
    except socket.gaierror as e:
        missing = e.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
        raise DownloadError("unknown_host" if missing else "error", f"cannot resolve host {host!r}: {e}") from e
    except (OSError, UnicodeError) as e:
        raise DownloadError("bad_url" if isinstance(e, UnicodeError) else "error", f"bad host {host!r}: {e}") from e
    blocked = [a for a in addresses if address_blocked(a)]
    if blocked or not addresses:
        raise DownloadError("blocked", f"host {host!r} resolves to a non-public address {blocked[:1] or addresses}")


class BlockedConnection(Exception):
    """The socket connected to a non-public address (raised by the checked connection classes)."""


class _PeerCheck:
    def _new_conn(self):
        sock = super()._new_conn()  # type: ignore[misc]
        peer = sock.getpeername()[0]
        if address_blocked(peer):
            sock.close()
            host = getattr(self, "host", "?")
            raise BlockedConnection(f"host {host!r} connected to non-public address {peer}")
        return sock


class _CheckedHTTPConnection(_PeerCheck, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_PeerCheck, HTTPSConnection):
    pass


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class _CheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}


def make_session(options: DownloadOptions) -> requests.Session:
    """A Session for one worker thread: no proxies or .netrc from the environment, peer checks unless allowed."""
    session = requests.Session()
    session.trust_env = False
    session.headers.update({"User-Agent": options.user_agent, "Accept": ACCEPT})
    if not options.allow_private:
        session.mount("http://", _CheckedAdapter())
        session.mount("https://", _CheckedAdapter())
    return session


class HostRateLimiter:
    """Spaces the requests to each host by ``1 / rate`` seconds (thread-safe; ``rate`` 0 means no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, host: str) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def decode_data_url(url: str, max_bytes: int) -> bytes:
    """The bytes of a ``data:image/...;base64,`` URL (content is checked later, whatever the media type says)."""
    header, sep, payload = url[5:].partition(",")
    if not sep or not header.lower().startswith("image/") or not header.lower().endswith(";base64"):
        raise DownloadError("bad_url", "expected a data:image/...;base64, URL")
    payload = re.sub(r"\s+", "", payload)
    if "%" in payload:
        payload = unquote_to_bytes(payload).decode("ascii", "replace")
    if len(payload) // 4 * 3 > max_bytes:
        raise DownloadError("too_large", f"data URL larger than {max_bytes} bytes")
    try:
        return base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise DownloadError("bad_url", f"data URL is not valid base64: {e}") from e


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def backoff(attempt: int, after: float | None) -> float | None:
    """Delay before try ``attempt + 1``: the server's ``Retry-After`` if given (None when too long), else exponential
    with jitter."""
    if after is not None:
        return after if after <= MAX_RETRY_AFTER else None
    return BACKOFF * 2**attempt * random.uniform(0.5, 1.5)


def fetch(session: requests.Session, url: str, options: DownloadOptions, limiter: HostRateLimiter) -> bytes:
    """The body of ``url`` (after redirects), trying transient failures again.

    Raises:
        DownloadError: with the manifest status (``bad_url``, ``blocked``, ``too_large``, ``http_<code>``, ``error``,
            ``too_many_redirects``).
    """
    if url[:5].lower() == "data:":
        return decode_data_url(url, options.max_bytes)
    attempt = 0
    while True:
        try:
            return _fetch_once(session, url, options, limiter)
        except DownloadError as e:
            final = is_final(e.status) or attempt >= options.retries
            delay = None if final else backoff(attempt, e.retry_after)
            if delay is None:
                raise
            logger.debug("%s: %s, trying again in %.2f s", url, e.message, delay)
        time.sleep(delay)
        attempt += 1


def _target(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise DownloadError("bad_url", f"malformed URL: {e}") from e
    if parts.scheme.lower() not in ("http", "https"):
        raise DownloadError("bad_url", f"unsupported URL scheme {parts.scheme!r}", expected="http, https or data:image")
    if not parts.hostname:
        raise DownloadError("bad_url", "URL has no host")
    return parts.hostname, port or (443 if parts.scheme.lower() == "https" else 80)


def _fetch_once(session: requests.Session, url: str, options: DownloadOptions, limiter: HostRateLimiter) -> bytes:
    for _ in range(MAX_REDIRECTS + 1):
        host, port = _target(url)
        if not options.allow_private:
            check_host(host, port)
        limiter.wait(host)
        try:
            response = session.get(url, stream=True, allow_redirects=False, timeout=(options.timeout, options.timeout))
        except BlockedConnection as e:
            raise DownloadError("blocked", str(e)) from e
        except requests.Timeout as e:
            raise DownloadError("error", f"timed out after {options.timeout} s") from e
        except requests.ConnectionError as e:
            raise DownloadError("error", f"connection failed: {_first_line(e)}") from e
        except (requests.RequestException, ValueError) as e:  # InvalidURL, bad header values...
            raise DownloadError("bad_url", f"cannot request URL: {_first_line(e)}") from e
        with response:
            code = response.status_code
            if code in REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise DownloadError(f"http_{code}", f"HTTP {code} redirect without a Location")
                url = urljoin(url, location)
                continue
            if not 200 <= code < 300:
                raise DownloadError(
                    f"http_{code}",
                    f"HTTP {code} {response.reason or ''}".strip(),
                    retry_after=retry_after(response.headers.get("Retry-After")),
                )
            return _read_body(response, options)
    raise DownloadError("too_many_redirects", f"more than {MAX_REDIRECTS} redirects")


def _read_body(response: requests.Response, options: DownloadOptions) -> bytes:
    length = response.headers.get("Content-Length", "")
    if length.strip().isdigit() and int(length) > options.max_bytes:
        raise DownloadError("too_large", f"Content-Length {int(length)} > {options.max_bytes} bytes")
    deadline = time.monotonic() + BODY_TIME_FACTOR * options.timeout
    body = bytearray()
    try:
        for chunk in response.iter_content(CHUNK):
            body += chunk
            if len(body) > options.max_bytes:
                raise DownloadError("too_large", f"body larger than {options.max_bytes} bytes")
            if time.monotonic() > deadline:
                raise DownloadError("error", f"body took more than {BODY_TIME_FACTOR * options.timeout:g} s")
    except requests.RequestException as e:  # cut connections, bad chunking or gzip, read timeouts
        raise DownloadError("error", f"reading the body failed: {_first_line(e)}") from e
    return bytes(body)


def _first_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:300]
