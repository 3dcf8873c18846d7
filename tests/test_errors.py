"""One error family: every engine error has a code in dalil/errors.py's table, and the same failure
reads the same from the HTTP API, the HTTP client, the Python API and the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_python_api import _Server

import dalil
from dalil.errors import KINDS, DalilError


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def test_every_engine_error_has_a_code_and_a_public_class():
    import dalil.api.app
    import dalil.api.cli
    import dalil.indexer.ingest
    import dalil.indexer.update

    classes = _subclasses(DalilError)
    names = {c.__name__ for c in classes}
    assert {"QueryError", "CorpusError", "IndexCorruptError", "LockTimeoutError", "SourceError"} <= names
    for cls in classes:
        assert cls.code in KINDS, cls
        public = cls("why").public()
        assert isinstance(public, dalil.Error) and public.code == cls.code and public.message == "why"
        assert public.status == KINDS[cls.code].status


def test_defining_an_error_with_an_unknown_code_fails_at_once():
    with pytest.raises(TypeError, match=r"not in dalil\.errors\.KINDS"):

        class Typo(DalilError):
            code = "index_damgaed"


NEWS = {"id": "late-news", "title": "خبر", "text": "أعلنت الوزارة إطلاق شبكة الجيل الخامس في أسوان اليوم."}


def _damage_newest_segment(index: Path) -> None:
    newest = max((index / "CURRENT").parent.rglob("seg-*.faiss"), key=lambda p: p.stat().st_mtime_ns)
    newest.write_bytes(b"\x00garbage" * 64)


def test_a_damaged_index_reads_as_index_damaged_from_every_face(seed_index, encoder, tmp_path, capsys):
    from dalil.api.cli import main

    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    with _Server(index, encoder, token=None) as url:
        with dalil.open_index(index, model=encoder) as local:
            local.add([NEWS])  # a new segment, read by the next search of every reader
        _damage_newest_segment(index)

        import httpx

        answer = httpx.get(f"{url}/search", params={"q": "الجيل الخامس"}, timeout=60)
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "index_damaged"
        assert "damaged" in answer.json()["error"]["message"]

        with dalil.Client(url) as client, pytest.raises(dalil.IndexDamaged) as over_http:
            client.search("الجيل الخامس")
        assert over_http.value.code == "index_damaged" and over_http.value.status == 503

    with pytest.raises(dalil.IndexDamaged) as local_error, dalil.open_index(index, model=encoder) as local:
        local.search("الجيل الخامس")
    assert local_error.value.code == "index_damaged" and local_error.value.status == 503

    code = main(["search", "--index", str(index), "الجيل الخامس"])
    err = capsys.readouterr().err
    assert code == KINDS["index_damaged"].exit == 1
    assert err.startswith("dalil: error: ") and "damaged" in err and "Traceback" not in err
