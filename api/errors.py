"""The Python API's errors over HTTP: the client's reading of a server's error answer, and the
engine's errors raised as the public family (the classes and the one code table are dalil/errors.py).

Every error carries the same `code` the HTTP API puts in `{"error": {"code", "message"}}`, so a
program handles a failure the same way whether it searched an index on disk or a server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dalil.errors import (
    KINDS,
    Conflict,
    DalilError,
    Error,
    IndexDamaged,
    InvalidRequest,
    NotFound,
    Unauthorized,
    Unavailable,
)

__all__ = [
    "Conflict",
    "Error",
    "IndexDamaged",
    "InvalidRequest",
    "NotFound",
    "Unauthorized",
    "Unavailable",
    "from_response",
    "one_line",
    "translated",
]


def one_line(details: list[dict]) -> str:
    """Field problems as one message: `text: Field required; k: ...` (the API's and the client's)."""
    return "; ".join(f"{d['field']}: {d['message']}" if d["field"] else d["message"] for d in details)


# For an answer without a code dalil knows (a proxy's 502, an older server): the class by status.
_BY_STATUS: dict[int, type[Error]] = {
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
    503: Unavailable,
}


def from_response(status: int, body: object) -> Error:
    """The error a server's answer stands for (its `{"error": ...}` body when it sent one)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"code": "http_error", "message": f"the server answered HTTP {status}"}
    code = str(error.get("code", "http_error"))
    cls = KINDS[code].public if code in KINDS else _BY_STATUS.get(status, Error)
    return cls(
        code,
        str(error.get("message", f"HTTP {status}")),
        status,
        error.get("details") if isinstance(error.get("details"), list) else None,
    )


@contextmanager
def translated() -> Iterator[None]:
    """Raise the engine's own errors as the public family (dalil/errors.py's table)."""
    try:
        yield
    except DalilError as exc:
        raise exc.public() from exc
