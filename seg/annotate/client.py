"""A connection to a Label Studio server through label-studio-sdk, with seg's errors, timeouts and retries.

Every call to the server goes through :meth:`Client.call` (SDK methods) or :meth:`Client.request` (plain HTTP for
what the SDK does not cover: file uploads, served images, ``/health``). Both turn the SDK's and httpx's exceptions into
one-line :mod:`seg.annotate.errors` and retry with exponential backoff:

* calls marked ``safe`` (reads, validations, and imports keyed so that a repeat cannot duplicate anything) are
  retried after a timeout, a dropped connection, HTTP 5xx, 408 or 429;
* every call is retried when the connection could not even be opened (nothing reached the server).

The SDK's own retries are switched off: it retries every method, POST included, which could create a task twice.
The API key is never put in a message or a log record; the token is only sent to the server's own origin.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

from seg.annotate.errors import (
    AuthError,
    NotFoundError,
    RequestError,
    ServerError,
    ServerTimeoutError,
    UnreachableError,
)
from seg.errors import OptionError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Where ``seg annotate`` looks for a server when no ``--url`` is given.
DEFAULT_URL = "http://127.0.0.1:8080"
#: HTTP statuses worth another try for a safe call.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Longest wait between two tries, in seconds.
MAX_DELAY = 8.0

_KEY_HELP = "copy the token from Label Studio's Account & Settings page into --api-key or LABEL_STUDIO_API_KEY"


def display_url(url: str) -> str:
    """``url`` without user name, password, query or fragment: what messages show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def normalize_url(url: str) -> str:
    """Check that ``url`` is an http(s) URL and drop its trailing slash.

    Raises:
        OptionError: for anything else (a usage error).
    """
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OptionError("not a Label Studio URL", expected="http://HOST:PORT", actual=url)
    return text.rstrip("/")


def server_message(body: Any, limit: int = 300) -> str:
    """The server's explanation in an error body, on one line (empty when it gave none worth showing)."""
    if isinstance(body, Mapping):
        parts = []
        errors = body.get("validation_errors")
        if isinstance(errors, Mapping):
            for field, problems in errors.items():
                text = "; ".join(str(p) for p in problems) if isinstance(problems, list) else str(problems)
                parts.append(text if field in ("non_field_errors", "detail") else f"{field}: {text}")
        elif errors:
            parts.append(str(errors))
        detail = body.get("detail")
        if detail and (not parts or detail != "Validation error"):
            parts.insert(0, str(detail))
        if not parts:
            parts = [f"{k}: {v}" for k, v in body.items() if k not in ("id", "status_code", "version", "exc_info")]
        text = "; ".join(parts)
    elif isinstance(body, list):
        text = "; ".join(str(item) for item in body)
    elif isinstance(body, str) and "<" not in body[:200]:  # skip HTML error pages
        text = body
    else:
        text = ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Client:
    """A Label Studio server at ``url``, reached with ``api_key``.

    Args:
        url: the server, e.g. ``http://127.0.0.1:8080``.
        api_key: a personal access token or a legacy token.
        timeout: seconds to wait for each answer.
        retries: how many times a retryable call is tried again.
        backoff: the first wait before a new try, doubled after each (at most :data:`MAX_DELAY`).
        sleep: the waiting function (tests pass a recorder).
        http: the ``httpx.Client`` to send requests with (default: a new one; tests pass a mock transport).

    Attributes:
        url: the server's URL without a trailing slash.
        sdk: the ``label_studio_sdk.client.LabelStudio`` instance (its own retries off).
        http: the httpx client the SDK uses, for plain requests.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        http: Any = None,
    ) -> None:
        import httpx
        from label_studio_sdk.client import LabelStudio

        self.url = normalize_url(url)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._key = api_key
        self.http = http if http is not None else httpx.Client(timeout=timeout, follow_redirects=True)
        try:
            self.sdk = LabelStudio(
                base_url=self.url, api_key=api_key, timeout=timeout, max_retries=0, httpx_client=self.http
            )
        except Exception as e:  # the SDK refuses an expired JWT before any request
            self.http.close()
            error = self.translate(e, "reading the API key", safe=False)[0]
            if error is None:
                raise
            raise error from None

    def __repr__(self) -> str:
        return f"Client({display_url(self.url)!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    # -- calls ----------------------------------------------------------------------------------------------------

    def call(self, what: str, function: Callable[..., T], *args: Any, safe: bool = False, **kwargs: Any) -> T:
        """Run ``function(*args, **kwargs)`` (an SDK method), translating and retrying its failures.

        Args:
            what: what the call does, for messages ("listing tasks of project 3").
            function: the SDK method or any callable that talks to the server.
            safe: True when running it twice does no harm (reads, validations, keyed imports).

        Raises:
            ServerError: a subclass saying what went wrong, without the API key.
        """
        attempt = 0
        while True:
            try:
                return function(*args, **kwargs)
            except Exception as e:
                error, retry = self.translate(e, what, safe)
                if error is None:
                    raise
                if not retry or attempt >= self.retries:
                    raise error from _scrubbed(e)
                delay = min(self.backoff * 2**attempt, MAX_DELAY)
                logger.info("%s; trying again in %.1f s", error, delay)
                self._sleep(delay)
                attempt += 1

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        safe: bool | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ):
        """Send a plain HTTP request to the server and return the httpx response (status < 400).

        Args:
            method: "GET", "POST", ...
            url: a path relative to the server's URL ("api/version"), a path on its host as task data holds them
                ("/data/local-files/?d=x.png"), or an absolute URL; the token is sent only to the server's origin.
            what: what the request does, for messages.
            safe: whether a repeat does no harm (default: True for GET and HEAD).
            timeout: seconds for this request (default: the client's).
            **kwargs: passed to ``httpx.Client.request`` (params, json, files, data).
        """
        full = urljoin(self.url + "/", url)
        if safe is None:
            safe = method.upper() in ("GET", "HEAD")

        def send():
            from label_studio_sdk.core.api_error import ApiError

            headers = self.auth_headers() if self.same_origin(full) else {}
            response = self.http.request(
                method, full, headers=headers, timeout=self.timeout if timeout is None else timeout, **kwargs
            )
            if response.status_code >= 400:
                try:
                    body = response.json()
                except ValueError:
                    body = response.text
                raise ApiError(status_code=response.status_code, body=body)
            return response

        return self.call(what, send, safe=safe)

    def get_json(self, path: str, *, what: str) -> Any:
        """GET ``path`` (relative to the server's URL) and decode its JSON answer."""
        response = self.request("GET", path, what=what)
        try:
            return response.json()
        except ValueError as e:
            raise ServerError(
                f"{self.where} sent something that is not JSON while {what}: is this Label Studio's URL?"
            ) from e

    def auth_headers(self) -> dict[str, str]:
        """The headers the SDK authenticates with (a legacy token, or an access token refreshed from a JWT)."""
        return dict(self.sdk._client_wrapper.get_headers())

    def same_origin(self, url: str) -> bool:
        """True when ``url`` is on this server (so the token may be sent with it)."""
        a, b = urlsplit(self.url), urlsplit(url)
        return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)

    def whoami(self) -> dict:
        """The account the key belongs to (checks that the server is up and accepts the key)."""
        user = self.call("checking the API key", self.sdk.users.whoami, safe=True)
        return {"id": user.id, "email": user.email, "username": user.username}

    # -- errors ---------------------------------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"Label Studio at {display_url(self.url)}"

    def translate(self, error: BaseException, what: str, safe: bool) -> tuple[ServerError | None, bool]:
        """The seg error for an SDK/httpx exception, and whether the call may be tried again.

        Returns ``(None, False)`` for exceptions that are not about talking to the server.
        """
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        if isinstance(error, httpx.ConnectTimeout):
            return UnreachableError(f"cannot reach {self.where} (connection timed out): is it running?"), True
        if isinstance(error, httpx.ConnectError):
            return UnreachableError(f"cannot reach {self.where}: is it running?"), True
        if isinstance(error, httpx.TimeoutException):
            message = f"{self.where} did not answer within {self.timeout:g} s while {what}"
            return ServerTimeoutError(message), safe
        if isinstance(error, httpx.TransportError):
            message = f"the connection to {self.where} failed while {what} ({type(error).__name__})"
            return UnreachableError(message), safe
        if isinstance(error, ApiError):
            return self._api_error(error, what), safe and error.status_code in RETRY_STATUSES
        return None, False

    def _api_error(self, error: Any, what: str) -> ServerError:
        status = error.status_code
        said = self._redact(server_message(error.body))
        told = f" (server: {said})" if said else ""
        if status is None or 200 <= status < 400:
            return ServerError(f"{self.where} gave an answer seg cannot read while {what}: is this Label Studio's URL?")
        if status == 401:
            return AuthError(
                f"the API key was refused by {self.where}{told}; {_KEY_HELP} (a legacy token also needs "
                "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true on the server)",
                status=status,
            )
        if status == 403:
            return AuthError(f"{self.where} denied permission for {what}{told}", status=status)
        if status == 404:
            return NotFoundError(f"{self.where}: not found while {what}{told}", status=status)
        if status < 500:
            return RequestError(f"{self.where} refused {what} (HTTP {status}){told}", status=status)
        return ServerError(f"{self.where} failed while {what} (HTTP {status}){told}", status=status)

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text


def _scrubbed(error: BaseException) -> BaseException:
    """The cause to chain: the SDK's ApiError without the response headers (they carry a session cookie)."""
    from label_studio_sdk.core.api_error import ApiError

    if isinstance(error, ApiError) and error.headers:
        return ApiError(status_code=error.status_code, body=error.body)
    return error


def connect(url: str, api_key: str | None, timeout: float = 30.0, **options: Any) -> Client:
    """Connect to the Label Studio server at ``url`` and check that it accepts ``api_key``.

    Args:
        url: the server, e.g. ``http://127.0.0.1:8080``.
        api_key: a personal access token or a legacy token.
        timeout: seconds to wait for each answer.
        **options: ``retries``, ``backoff``, ``sleep`` of :class:`Client`.

    Raises:
        AuthError: no key, or the server refused it.
        UnreachableError: nothing answers at ``url``.
        OptionError: ``url`` is not an http(s) URL.

    Example:
        >>> client = connect("http://127.0.0.1:8080", os.environ["LABEL_STUDIO_API_KEY"])  # doctest: +SKIP
    """
    if not api_key:
        raise AuthError(f"no API key for Label Studio at {display_url(normalize_url(url))}: {_KEY_HELP}")
    client = Client(url, api_key, timeout=timeout, **options)
    try:
        client.whoami()
    except BaseException:
        client.close()
        raise
    return client
