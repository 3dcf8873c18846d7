"""The one error family of dalil's Python API (`dalil.Error`), for the local index and the HTTP client.

Every error carries the same `code` the HTTP API puts in `{"error": {"code", "message"}}`, so a
program handles a failure the same way whether it searched an index on disk or a server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class Error(Exception):
    """A dalil failure: `code` (machine-readable, as in the HTTP API), `message`, and for the client
    the HTTP `status` and the server's `details` (one entry per invalid field)."""

    def __init__(
        self, code: str, message: str, status: int | None = None, details: list[dict] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details or []

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


class InvalidRequest(Error):
    """The question, an option or an article is unusable (HTTP 422)."""


class NotFound(Error):
    """No index at that path, or no article with that id (HTTP 404)."""


class Unauthorized(Error):
    """A write without the right token, or to a read-only server (HTTP 401/403)."""


class Conflict(Error):
    """The index cannot take the write now: another writer holds it, or it is read-only (HTTP 409)."""


class Unavailable(Error):
    """The server cannot be reached, timed out, or a part of it is down (HTTP 503)."""


class IndexDamaged(Error):
    """The index exists but cannot be read: a damaged file, or a format this version cannot open."""


def one_line(details: list[dict]) -> str:
    """Field problems as one message: `text: Field required; k: ...` (the API's and the client's)."""
    return "; ".join(f"{d['field']}: {d['message']}" if d["field"] else d["message"] for d in details)


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
    cls = _BY_STATUS.get(status, Error)
    return cls(
        str(error.get("code", "http_error")),
        str(error.get("message", f"HTTP {status}")),
        status,
        error.get("details") if isinstance(error.get("details"), list) else None,
    )


@contextmanager
def translated() -> Iterator[None]:
    """Raise the engine's own exceptions as the public family (codes as the HTTP API uses them)."""
    from dalil.indexer.corpus import CorpusError
    from dalil.indexer.encoders.engines import EncoderError
    from dalil.indexer.store.layout import IndexCorruptError, IndexNotFoundError, OldFormatError, StoreError
    from dalil.indexer.store.locking import LockTimeoutError
    from dalil.search.engine import EncoderMismatchError, QueryError

    try:
        yield
    except Error:
        raise
    except QueryError as exc:
        raise InvalidRequest("invalid_query", str(exc)) from exc
    except CorpusError as exc:
        raise InvalidRequest("invalid_corpus", str(exc)) from exc
    except IndexNotFoundError as exc:
        raise NotFound("index_not_found", str(exc)) from exc
    except (IndexCorruptError, OldFormatError) as exc:
        raise IndexDamaged("index_damaged", str(exc)) from exc
    except LockTimeoutError as exc:
        raise Conflict("busy", str(exc)) from exc
    except StoreError as exc:
        raise Conflict("index_not_writable", str(exc)) from exc
    except (EncoderError, EncoderMismatchError) as exc:
        raise Error("encoder", str(exc)) from exc
