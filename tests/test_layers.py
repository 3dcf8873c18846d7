"""The layering of the code (../shared/architecture.md), read from the imports themselves.

dalil/errors.py (the one error family), dalil/progress.py and dalil/arrays.py import nothing of
dalil, so every layer may use them;
analysis imports nothing else of dalil; store imports analysis; encoders import neither store nor
the pipelines; the pipelines (build, update, ingest) write through store and hold no SQL or FAISS of
their own; search never imports the pipelines, sqlite3, apsw or faiss; search and api reach the store only
through its public face (indexer/store/__init__.py) and read a commit through search/protocols.py,
never a snapshot's connection, metadata or segments; api uses only the parts of indexer it drives
(the pipelines, the corpus reader, the encoders, analysis, the store's face); no module-level
import circles.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

PACKAGES = ("indexer", "search", "api")  # folders, imported as dalil.<folder>
PIPELINES = (
    "dalil.indexer.build",
    "dalil.indexer.update",
    "dalil.indexer.ingest",
    "dalil.indexer.shard_split",
    "dalil.indexer.ray_build",
)
DRIVERS = ("sqlite3", "apsw", "faiss")
STORE = "dalil.indexer.store"
# What api/ may use of indexer: what it drives (the pipelines), what it reads (corpus, analysis),
# the encoders it loads and their thread limits, and the store's face.
API_USES = (
    *PIPELINES,
    "dalil.indexer.corpus",
    "dalil.indexer.analysis",
    "dalil.indexer.encoders.engines",
    "dalil.indexer.encoders.threads",
    STORE,
)
# A commit's internals that the store's Snapshot holds and the IndexView Protocol does not offer.
STORE_INTERNALS = ("db", "meta", "segments")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for file in (REPO / package).rglob("*.py"):
            parts = file.relative_to(REPO).with_suffix("").parts
            out[".".join(("dalil", *(parts[:-1] if parts[-1] == "__init__" else parts)))] = file
    return out


def _imports(file: Path, top_level_only: bool = False) -> set[str]:
    """Modules a file imports (at run time: `if TYPE_CHECKING:` blocks are left out)."""
    tree = ast.parse(file.read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(nodes, nested: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import) and not (top_level_only and nested):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not (top_level_only and nested):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if children:
                    inner = nested or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                    visit(children, inner)

    visit(tree.body, False)
    return found


def _dalil(names: set[str], modules: dict[str, Path]) -> set[str]:
    return {n for n in names if n in modules}


def _violations(prefix: str, allowed: tuple[str, ...], modules: dict[str, Path]) -> list[str]:
    bad = []
    for name, file in modules.items():
        if name == prefix or name.startswith(prefix + "."):
            for imported in _dalil(_imports(file), modules):
                if not imported.startswith(allowed):
                    bad.append(f"{name} imports {imported}")
    return bad


@pytest.mark.parametrize("module", ["errors", "progress", "arrays"])
def test_the_cross_cutting_modules_import_nothing_of_dalil(module):
    assert not {i for i in _imports(REPO / "dalil" / f"{module}.py") if i.split(".")[0] == "dalil"}


def test_analysis_imports_nothing_else_of_dalil():
    modules = _modules()
    assert _violations("dalil.indexer.analysis", ("dalil.indexer.analysis",), modules) == []


def test_store_imports_only_analysis():
    modules = _modules()
    assert (
        _violations("dalil.indexer.store", ("dalil.indexer.store", "dalil.indexer.analysis"), modules) == []
    )


def test_encoders_import_neither_the_store_nor_the_pipelines():
    modules = _modules()
    assert (
        _violations("dalil.indexer.encoders", ("dalil.indexer.encoders", "dalil.indexer.analysis"), modules)
        == []
    )


def test_only_the_store_speaks_sql_or_faiss_in_the_indexer_and_search():
    modules = _modules()
    bad = []
    for name, file in modules.items():
        if name.startswith(("dalil.indexer.store", "dalil.api")) or name == "dalil.indexer":
            continue
        drivers = {i for i in _imports(file) if i.split(".")[0] in DRIVERS}
        if drivers and not name.startswith("dalil.indexer.encoders"):
            bad.append(f"{name} imports {sorted(drivers)}")
    assert bad == []
    for name in PIPELINES:
        text = modules[name].read_text(encoding="utf-8")
        assert "SELECT " not in text and "INSERT " not in text and "faiss." not in text, name


def test_search_never_imports_the_pipelines():
    modules = _modules()
    bad = [
        f"{name} imports {i}"
        for name, file in modules.items()
        if name.startswith("dalil.search")
        for i in _imports(file)
        if i.startswith(PIPELINES) or i.split(".")[0] in DRIVERS
    ]
    assert bad == []


def test_no_import_circles():
    modules = _modules()
    graph = {
        name: _dalil(_imports(file, top_level_only=True), modules) - {name} for name, file in modules.items()
    }
    # `from package import module` names the module: keep the edge to the module, not its package
    graph = {
        name: {d for d in deps if not any(o.startswith(d + ".") for o in deps)}
        for name, deps in graph.items()
    }
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            assert (cycle := visit(module)) is None, " -> ".join(cycle)


def _store_face() -> set[str]:
    import dalil.indexer.store as store

    return set(store.__all__)


@pytest.mark.parametrize("layer", ["dalil.search", "dalil.api"])
def test_search_and_api_reach_the_store_only_through_its_face(layer):
    modules, face = _modules(), _store_face()
    bad = []
    for name, file in modules.items():
        if not name.startswith(layer):
            continue
        for imported in _imports(file):
            if imported.startswith(STORE + ".") and imported.removeprefix(STORE + ".") not in face:
                bad.append(f"{name} imports {imported}")
    assert bad == []


def test_search_reads_a_commit_only_through_the_protocol():
    """No snapshot's `.db`, `.meta` or `.segments` in search/ (the sharded back-end has none), and no
    type hint or import names the store's Snapshot."""
    modules = _modules()
    bad = []
    for name, file in modules.items():
        if not name.startswith("dalil.search"):
            continue
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in STORE_INTERNALS:
                bad.append(f"{name}:{node.lineno} reads .{node.attr}")
            if isinstance(node, ast.Name) and node.id in ("Snapshot", "VectorView"):
                bad.append(f"{name}:{node.lineno} names {node.id}")
    assert bad == []


def test_api_uses_only_what_it_drives_of_the_indexer():
    modules = _modules()
    bad = [
        f"{name} imports {imported}"
        for name, file in modules.items()
        if name.startswith("dalil.api")
        for imported in _dalil(_imports(file), modules)
        if imported.startswith("dalil.indexer.") and not imported.startswith(API_USES)
    ]
    assert bad == []
