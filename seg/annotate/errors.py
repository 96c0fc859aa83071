"""Errors of a conversation with a Label Studio server, all :class:`~seg.errors.SegError` subclasses.

Messages are one line, name the server's URL, and never contain the API key.
"""

from __future__ import annotations

from seg.errors import SegError


class ServerError(SegError):
    """Label Studio answered with an error, or with something that is not Label Studio's API.

    ``status`` is the HTTP status when there was one.
    """

    def __init__(self, message: str, *, status: int | None = None, **fields: object) -> None:
        self.status = status
        super().__init__(message, **fields)


class UnreachableError(ServerError):
    """No connection to the server (refused, unknown host, dropped)."""


class ServerTimeoutError(ServerError):
    """The server did not answer in time."""


class AuthError(ServerError):
    """The API key is missing, refused (HTTP 401), or lacks a permission (HTTP 403)."""


class RequestError(ServerError):
    """The server refused a request (HTTP 4xx other than 401/403), with its own explanation."""


class NotFoundError(RequestError):
    """A project, task or file the request named does not exist on the server (HTTP 404)."""


class ProjectError(SegError):
    """A project cannot be used as asked (ambiguous title, a label config without the needed labels or tool)."""
