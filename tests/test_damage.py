"""Every file an index holds, truncated, overwritten with garbage or deleted: `dalil search` and
`dalil serve` refuse it with one clear line and a non-zero exit (serve before it starts listening),
and `dalil check` names the file.

The loop walks the files actually on disk, so a file type added later is covered without editing
this test; only files whose content is never read are exempt, each with its reason.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import CORPUS
from dalil.api.cli import main

pytestmark = pytest.mark.slow

EXEMPT = {
    ".write.lock": "an advisory lock (flock) on the file itself; its few bytes are a note for people",
}
# Read only by writers (new segments are cloned from these trained cells): searches keep serving
# while `dalil check` names the file, and a write that needs it fails on it.
WRITERS_ONLY = ("families/",)
DAMAGES = ("truncate", "garbage", "delete")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, encoder) -> Path:
    """An index with every kind of file: IVF cells (a family), two segments, the word table."""
    from dalil.indexer.build import build_index
    from dalil.indexer.corpus import RawArticle
    from dalil.indexer.store.vector_settings import VectorIndexSettings
    from dalil.indexer.update import update_index

    index = tmp_path_factory.mktemp("damage") / "index"
    build_index(
        CORPUS, index, encoder, progress=False, vector_settings=VectorIndexSettings("ivf-flat", nlist=2)
    )
    news = RawArticle(
        "n1", "خبر عن إطلاق الجيل الخامس في مصر.\n\nوتغطي الشبكة القاهرة والإسكندرية في المرحلة الأولى."
    )
    update_index(index, [news], (), encoder, merge_after=False)
    return index


def _files(index: Path) -> list[str]:
    return sorted(str(p.relative_to(index)) for p in index.rglob("*") if p.is_file() and p.name not in EXEMPT)


def test_the_loop_covers_every_kind_of_file(pristine):
    names = {Path(f).name.split("-")[0].split(".")[0] for f in _files(pristine)}
    kinds = {Path(f).suffix for f in _files(pristine)}
    assert {"CURRENT", "index", "vocabulary", "seg", "fam"} <= names, names
    assert {".sqlite", ".faiss", ".json", ".npy"} <= kinds, kinds


def _damage(target: Path, how: str) -> None:
    data = target.read_bytes()
    if how == "truncate":
        target.write_bytes(data[: len(data) // 3])
    elif how == "garbage":
        target.write_bytes(bytes((i * 151 + 7) % 256 for i in range(len(data))))
    else:
        target.unlink()


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("how", DAMAGES)
def test_every_file_damaged_is_refused_and_named(pristine, tmp_path, capsys, monkeypatch, how):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)  # `dalil serve` got as far as starting
    for name in ("DALIL_INDEX", "DALIL_CORS_ORIGINS"):  # set by `dalil serve`: restored afterwards
        monkeypatch.setenv(name, "")
    failures = []
    for name in _files(pristine):
        index = tmp_path / f"{how}-{name.replace('/', '_')}"
        shutil.copytree(pristine, index)
        _damage(index / name, how)
        code, err = _run(capsys, "check", "--index", str(index), "--skip-encoder")
        if code == 0 or Path(name).name not in err:
            failures.append(f"check, {how} {name}: exit {code}, {err.strip()!r}")
        for command in (["search", "الجيل الخامس"], ["serve", "--port", "0"]):
            code, err = _run(capsys, command[0], "--index", str(index), *command[1:])
            what = f"{command[0]}, {how} {name}"
            if any(part in name for part in WRITERS_ONLY):
                if code != 0:
                    failures.append(f"{what}: a file readers do not need stopped them: {err!r}")
                continue
            lines = err.strip().splitlines()
            if code == 0 or "Traceback" in err or not lines or not lines[-1].startswith("dalil"):
                failures.append(f"{what}: exit {code}, {err.strip()[-300:]!r}")
    assert not failures, "\n".join(failures)
