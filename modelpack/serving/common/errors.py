"""Why a request gets no prediction: the request's fault (RequestError, 4xx) or the model's (ServeError, 5xx).

Shipped inside every generated handler; a leaf module (standard library only) that every other serving module
may import.
"""

from __future__ import annotations


class RequestError(Exception):
    """A bad request: the client gets `status` and a JSON error naming what was expected."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class ServeError(RuntimeError):
    """The model cannot answer: the client gets `status` and `public()`, the log line the full cause."""

    status = 500
    log_key = "model_error"

    def public(self) -> str:
        return str(self)


class IntegrityError(ServeError):
    """The model bytes do not match the build manifest: refuse to serve."""

    log_key = "refused"

    def public(self) -> str:
        return "model integrity check failed; refusing to serve"


class SourceError(ServeError):
    """The model could not be fetched from its source: missing object, no access, or storage unreachable."""

    status = 503
    log_key = "model_source"

    def public(self) -> str:
        return f"model unavailable: {self}"


class LoadError(ServeError):
    """The packaged model is missing or unreadable, or the runtime cannot open it."""

    def public(self) -> str:
        return f"model unavailable: {self}"


class OutputError(ServeError):
    """The model produced NaN or infinity: such a result is never served (strict JSON has no such numbers)."""
