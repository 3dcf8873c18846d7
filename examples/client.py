"""dalil's HTTP API from Python: search a running server, and write to it with its token.

dalil serve --write-token-file token.txt &        # in another terminal
python examples/client.py http://127.0.0.1:8000 "$(cat token.txt)"
"""

from __future__ import annotations

import sys

import dalil


def main(url: str, token: str | None) -> None:
    with dalil.Client(url, token=token, timeout=30) as client:
        print("serving", client.stats()["passages"], "passages")
        for hit in client.search("5G cooperation with Russia", k=3):
            print(f"{hit.rank}. [{hit.score:.3f}] {hit.article_id}: {hit.title[:60]}")
        if token is None:
            return
        article = {"id": "example-1", "text": "أعلنت وزارة الاتصالات عن إطلاق شبكة الجيل الخامس في الأقصر."}
        print("add:", client.add([article]).added)
        print("delete:", client.delete(["example-1"]).deleted)
        try:
            client.search("الجيل الخامس", k=0)
        except dalil.InvalidRequest as exc:  # the server's 422, with the field that was wrong
            print(f"error {exc.status} {exc.code}: {exc.details[0]['field']}: {exc.details[0]['message']}")


if __name__ == "__main__":
    try:
        main(
            sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000",
            sys.argv[2] if len(sys.argv) > 2 else None,
        )
    except dalil.Unavailable as exc:
        sys.exit(f"dalil server not reachable: {exc.message}")
