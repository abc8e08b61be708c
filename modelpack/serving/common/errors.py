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


class decoding:  # noqa: N801 - used as `with decoding(...)`, like a keyword
    """`with decoding("input 'x'"):` around code that reads a client's bytes (numpy's .npy header parser, zipfile,
    zlib, Pillow, the JSON decoders): whatever they raise is the request's fault, so it becomes a 4xx naming
    `what` (413 when decoding ran out of memory), never a 500. RequestError and ServeError pass unchanged."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, (RequestError, ServeError)) or not isinstance(exc, Exception):
            return False
        if isinstance(exc, MemoryError):
            raise RequestError(f"{self.what} is too large to decode", status=413) from None
        detail = str(exc).strip().replace("\n", " ")[:160]
        raise RequestError(f"{self.what} cannot be decoded ({type(exc).__name__}{': ' + detail if detail else ''})"
                           ) from None
