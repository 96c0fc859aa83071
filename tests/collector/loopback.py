"""A web server on 127.0.0.1 for the collector's tests: engine result pages, images and hostile responses.

Routes map a path (query string excluded) to a :class:`Reply` or to a callable ``(handler) -> Reply`` for replies that
depend on the request. Every request is recorded in ``server.requests`` as ``(path_with_query, headers)``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Reply:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/html; charset=utf-8"


Route = Reply | Callable[[BaseHTTPRequestHandler], Reply]


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests.append((self.path, dict(self.headers)))
        route = self.server.routes.get(urlsplit(self.path).path)
        if route is None:
            reply = Reply(b"not found", status=404, content_type="text/plain")
        else:
            reply = route(self) if callable(route) else route
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        headers = {"Content-Length": str(len(reply.body)), **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        # the client may give up early (size cap, timeout): that is what some tests check
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(routes: dict[str, Route]) -> Iterator[LoopbackServer]:
    """Serve ``routes`` on a free port of 127.0.0.1 for the duration of the block."""
    server = LoopbackServer(routes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
