"""dalil from Python: build an index, search it in Arabic and English, add and delete an article.

    python examples/python_api.py [CORPUS] [INDEX_DIR]

CORPUS: a folder of .txt articles or a .jsonl(.gz) file (default: the repository's corpus/);
INDEX_DIR: where to write the index (default: a temporary folder).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import dalil


def main(corpus: Path, index_dir: Path) -> None:
    built = dalil.build_index(corpus, index_dir)  # model="auto", vector_index="auto", ... as `dalil index`
    print(f"indexed {built.articles} articles, {built.passages} passages in {built.seconds:.1f} s")

    with dalil.open_index(index_dir) as index:
        for question in ("التعاون مع روسيا في الجيل الخامس", "5G cooperation with Russia"):
            for hit in index.search(question, k=2):
                print(f"{hit.rank}. [{hit.score:.3f}] {hit.article_id} · {hit.title[:50]}")

        article = {
            "id": "example-1",
            "title": "إطلاق شبكة الجيل الخامس في الأقصر",
            "date": "2024-06-01",
            "text": "أعلنت وزارة الاتصالات عن إطلاق شبكة الجيل الخامس في مدينة الأقصر.",
        }
        print("add:", index.add([article]).added)
        print("found:", index.search("الجيل الخامس في الأقصر", k=1)[0].article_id)
        print("delete:", index.delete(["example-1"]).deleted)

        try:
            index.search("")
        except dalil.InvalidRequest as exc:  # every failure is a dalil.Error with a code and a message
            print(f"error: {exc.code}: {exc.message}")


if __name__ == "__main__":
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "corpus"
    with tempfile.TemporaryDirectory() as scratch:
        main(corpus, Path(sys.argv[2]) if len(sys.argv) > 2 else Path(scratch) / "index")
