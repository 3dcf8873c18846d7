"""dalil's errors: one base for what the engine raises, the public family, and one table between them.

- `DalilError` is the base of every error the engine raises on purpose (a bad question, a damaged
  index, a busy writer, an unreachable feed...). Each class names its `code`; everything else about
  the failure follows from that code in `KINDS`.
- `Error` and its subclasses (`InvalidRequest`, `NotFound`, `Unauthorized`, `Conflict`,
  `Unavailable`, `IndexDamaged`) are the public family of the Python API (`dalil.Error`), raised by
  `dalil.open_index` and `dalil.Client` alike, each with the HTTP API's `code`.
- `KINDS` is the one table from a code to its HTTP status, its CLI exit code and its public class:
  the HTTP API (api/app.py), the CLI (api/cli/) and the Python API (`public()`) all read it, so a
  failure reads the same from every face.

This module imports nothing of dalil, so every layer (indexer/analysis upwards) may raise from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

EXIT_ERROR, EXIT_USAGE = 1, 2  # the CLI's exit codes for a failure (api/cli/ documents them all)


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
    """The index exists but cannot be read: a damaged file, or a format this version cannot open
    (HTTP 503: another replica, or the same one after a rebuild, may answer)."""


@dataclass(frozen=True)
class Kind:
    status: int  # HTTP
    exit: int  # the CLI's exit code
    public: type[Error]  # what the Python API raises


KINDS: dict[str, Kind] = {
    # what was asked cannot be answered as asked: the caller can fix it
    "invalid_query": Kind(422, EXIT_USAGE, InvalidRequest),
    "invalid_request": Kind(422, EXIT_USAGE, InvalidRequest),
    "invalid_json": Kind(422, EXIT_USAGE, InvalidRequest),
    "invalid_option": Kind(422, EXIT_USAGE, InvalidRequest),
    "usage": Kind(422, EXIT_USAGE, InvalidRequest),
    "invalid_corpus": Kind(422, EXIT_ERROR, InvalidRequest),  # a file's content: nothing was changed
    "closed": Kind(422, EXIT_ERROR, InvalidRequest),
    "not_found": Kind(404, EXIT_ERROR, NotFound),
    "index_not_found": Kind(404, EXIT_ERROR, NotFound),
    "unauthorized": Kind(401, EXIT_ERROR, Unauthorized),
    "forbidden": Kind(403, EXIT_ERROR, Unauthorized),
    "method_not_allowed": Kind(405, EXIT_ERROR, Error),
    # the index cannot take this write now
    "busy": Kind(409, EXIT_ERROR, Conflict),
    "index_not_writable": Kind(409, EXIT_ERROR, Conflict),
    "merge_conflict": Kind(409, EXIT_ERROR, Conflict),
    # the index on disk cannot be read
    "index_damaged": Kind(503, EXIT_ERROR, IndexDamaged),
    # something the answer needs is not there
    "unavailable": Kind(503, EXIT_ERROR, Unavailable),
    "not_ready": Kind(503, EXIT_ERROR, Unavailable),
    "timeout": Kind(503, EXIT_ERROR, Unavailable),
    "unreachable": Kind(503, EXIT_ERROR, Unavailable),
    "cluster_unavailable": Kind(503, EXIT_ERROR, Unavailable),
    "source_unreachable": Kind(502, EXIT_ERROR, Unavailable),
    # the installation or the engine
    "encoder": Kind(500, EXIT_ERROR, Error),
    "model_conversion": Kind(500, EXIT_ERROR, Error),
    "missing_dependency": Kind(500, EXIT_ERROR, Error),
    "failed": Kind(500, EXIT_ERROR, Error),
    "index_error": Kind(500, EXIT_ERROR, Error),
    "internal_error": Kind(500, EXIT_ERROR, Error),
}
_UNKNOWN = KINDS["internal_error"]


def kind_of(code: str) -> Kind:
    return KINDS.get(code, _UNKNOWN)


class DalilError(Exception):
    """The base of every error the engine raises on purpose; a subclass names its `code` in KINDS."""

    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.code not in KINDS:  # a typo would otherwise answer every caller with a bare 500
            raise TypeError(f"{cls.__name__}.code {cls.code!r} is not in dalil.errors.KINDS")

    @property
    def status(self) -> int:
        return KINDS[self.code].status

    @property
    def exit_code(self) -> int:
        return KINDS[self.code].exit

    def public(self) -> Error:
        """This failure as the Python API's family raises it (same code, message and status)."""
        kind = KINDS[self.code]
        return kind.public(self.code, self.message, kind.status)


class MissingDependency(DalilError):
    """An optional part was asked for and its package cannot be imported (the import's own message
    says why: not installed, or installed without something it needs)."""

    code = "missing_dependency"
