"""Typed errors raised by the Loupe client: one class per kind of failure, each carrying the server's message."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Type


class LoupeError(Exception):
    """Base of every error the client raises on purpose.

    `status_code` is the HTTP status when the error came from the server, None when it was raised client-side.
    `errors` lists the fields at fault as {"field", "message"} dicts; `payload` is the whole JSON error body.
    """

    def __init__(
        self,
        message: str,
        status_code: Optional[int] = None,
        errors: Optional[List[Dict[str, Any]]] = None,
        payload: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.errors: List[Dict[str, Any]] = list(errors or [])
        self.payload: Dict[str, Any] = dict(payload or {})

    def __str__(self) -> str:
        prefix = f"[{self.status_code}] " if self.status_code else ""
        lines = [f"{error.get('field')}: {error.get('message')}" for error in self.errors if isinstance(error, dict)]
        # The server's message usually repeats its first field error; say each fact once.
        details = [line for line in lines if line not in self.message]
        return prefix + "; ".join([self.message, *details])


class BadRequestError(LoupeError):
    """The server refused the request's content (400); `errors` names the fields."""


class UnauthorizedError(LoupeError):
    """Missing, wrong or expired credentials (401)."""


class ForbiddenError(LoupeError):
    """The credentials are valid but their user may not do this (403)."""


class NotFoundError(LoupeError):
    """The object does not exist or is not visible to this user (404, or nothing matched client-side)."""


class ConflictError(LoupeError):
    """The request repeats one already processed, e.g. the same prediction or a second shadow (409)."""


class TooLargeError(LoupeError):
    """The request body is over the server's size limit (413)."""


class ServerError(LoupeError):
    """The server failed (5xx) and still failed after the retries."""


class NetworkError(LoupeError):
    """The server could not be reached (connection refused, reset or timed out) after the retries."""


class InvalidQueryError(BadRequestError):
    """A predicted-asset query was malformed or matched ambiguously."""


class PredictionFormatError(LoupeError, ValueError):
    """A prediction format was built from values the server would refuse; raised before any request is sent."""

    def __init__(self, field: str, detail: str, index: Optional[int] = None) -> None:
        location = field if index is None else f"{field}[{index}]"
        super().__init__(f"{location}: {detail}", errors=[{"field": location, "message": detail}])
        self.field = field
        self.index = index


class UnsupportedContentTypeError(LoupeError, ValueError):
    """The image is neither PNG nor JPEG, or its type could not be told from its file name."""


_BY_STATUS: Dict[int, Type[LoupeError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
}


def error_for_status(status_code: int, payload: Dict[str, Any], fallback_message: str) -> LoupeError:
    """Build the typed error matching an HTTP status from the server's JSON error body."""
    cls = ServerError if status_code >= 500 else _BY_STATUS.get(status_code, LoupeError)
    message = payload.get("message") if isinstance(payload.get("message"), str) else fallback_message
    errors = payload.get("errors") if isinstance(payload.get("errors"), list) else []
    return cls(message, status_code=status_code, errors=errors, payload=payload)
