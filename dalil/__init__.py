"""dalil: semantic search over Arabic tech news — Arabic or English questions, ranked Arabic passages.

The public Python API (everything else in the package is private and may change)::

    import dalil

    dalil.build_index("corpus/", "data/index")          # -> dalil.BuildResult
    with dalil.open_index("data/index") as index:        # -> dalil.Index
        for hit in index.search("الجيل الخامس", k=3):    # -> list[dalil.Hit]
            print(hit.score, hit.title)
        index.add([{"id": "a1", "text": "..."}])         # -> dalil.WriteResult
        index.delete(["a1"])

    with dalil.Client("http://127.0.0.1:8000", token=None) as client:  # the HTTP API, same methods
        client.search("5G cooperation with Russia")

Failures raise `dalil.Error` (subclasses `InvalidRequest`, `NotFound`, `Unauthorized`, `Conflict`,
`Unavailable`, `IndexDamaged`), each with the HTTP API's error `code` and a `message`.

The repository keeps its folders at the top (`indexer/`, `search/`, `api/`); packaging maps them
into this one import name (`dalil.indexer`, `dalil.search`, `dalil.api`: pyproject's package-dir),
so installing dalil adds nothing else to site-packages.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from dalil.api.errors import (
    Conflict,
    Error,
    IndexDamaged,
    InvalidRequest,
    NotFound,
    Unauthorized,
    Unavailable,
)

# Loaded on first use, so `import dalil` (and the CLI, which imports dalil.api.cli) stays quick:
# the engine pulls in numpy, FAISS and SQLite, the client httpx.
_LAZY = {
    "build_index": "dalil.api.python",
    "open_index": "dalil.api.python",
    "Index": "dalil.api.python",
    "BuildResult": "dalil.api.python",
    "WriteResult": "dalil.api.python",
    "Results": "dalil.api.python",
    "Hit": "dalil.search.searcher",
    "Client": "dalil.api.client",
}

__all__ = [
    "BuildResult",
    "Client",
    "Conflict",
    "Error",
    "Hit",
    "Index",
    "IndexDamaged",
    "InvalidRequest",
    "NotFound",
    "Results",
    "Unauthorized",
    "Unavailable",
    "WriteResult",
    "__version__",
    "build_index",
    "open_index",
]

if TYPE_CHECKING:
    from dalil.api.client import Client
    from dalil.api.python import BuildResult, Index, Results, WriteResult, build_index, open_index
    from dalil.search.searcher import Hit


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dalil")
    except PackageNotFoundError:  # a checkout that was never installed
        return "0+unknown"


def __getattr__(name: str) -> object:
    if name == "__version__":
        globals()[name] = value = _version()
        return value
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dalil' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
