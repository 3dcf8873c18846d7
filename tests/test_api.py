"""The HTTP API over a real seed index: every endpoint, filters, paging, batch, and bad input."""

from __future__ import annotations

import json
import os

import pytest
from dalil.api.app import create_app
from fastapi.testclient import TestClient

SEED_000 = "000_5e840d295c91c543"
SEED_002 = "002_31814ce167dde68d"


@pytest.fixture(scope="module")
def client(seed_index, searcher):
    return TestClient(create_app(seed_index, searcher=searcher), raise_server_exceptions=False)


def test_search_get_returns_ranked_highlighted_passages(client):
    r = client.get("/search", params={"q": "الذكاء الاصطناعي", "k": 3})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) >= {"query", "took_ms", "total", "total_is_estimate", "results", "mode"}
    first = body["results"][0]
    assert first["article_id"] == SEED_002 and first["rank"] == 1
    assert set(first) >= {
        "rank",
        "score",
        "article_id",
        "title",
        "source",
        "date",
        "url",
        "passage_id",
        "text",
        "snippet",
        "highlights",
    }
    assert "<mark>" in first["snippet"]
    for a, b in first["highlights"]:
        assert first["text"][a:b] in ("الذكاء", "الاصطناعي", "الاصطناعى")
    assert "الذكاء".encode() in r.content  # UTF-8 JSON with Arabic as characters


def test_english_question_and_post_body(client):
    r = client.post("/search", json={"q": "artificial intelligence cooperation with China", "k": 2})
    assert r.status_code == 200 and r.json()["results"][0]["article_id"] == SEED_002
    assert (
        client.post("/search", json={"q": "5G cooperation with Russia"}).json()["results"][0]["article_id"]
        == SEED_000
    )


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_modes(client, mode):
    r = client.get("/search", params={"q": "ربط شبكات الألياف الضوئية بين مصر والأردن", "mode": mode})
    assert r.json()["mode"] == mode and r.json()["results"][0]["article_id"].startswith("003_")


def test_paging_is_consistent(client):
    full = client.get("/search", params={"q": "التعاون", "k": 10}).json()["results"]
    page2 = client.get("/search", params={"q": "التعاون", "k": 5, "offset": 5}).json()["results"]
    assert [h["passage_id"] for h in page2] == [h["passage_id"] for h in full[5:10]]
    assert [h["rank"] for h in page2] == [6, 7, 8, 9, 10]


def test_grouped_results(client):
    body = client.get("/search", params={"q": "التعاون مع روسيا", "k": 3, "group": "true"}).json()
    ids = [r["article_id"] for r in body["results"]]
    assert len(ids) == len(set(ids)) == 3 and body["results"][0]["best"]["article_id"] == ids[0]


def test_filters_apply_before_the_cut(tmp_path_factory, encoder):
    """A selective filter still returns k results when k exist (filtering inside retrieval)."""
    from dalil.indexer.build import build_index
    from dalil.search.searcher import Searcher

    corpus = tmp_path_factory.mktemp("filters") / "news.jsonl"
    records = []
    for i in range(30):
        source = "rare" if i % 10 == 0 else "common"  # 3 "rare" articles among 30
        records.append(
            {
                "id": f"a{i}",
                "title": f"خبر {i}",
                "source": source,
                "category": "technology",
                "date": f"2018-0{1 + i % 9}-15",
                "text": f"أعلنت الشركة رقم {i} عن هاتف ذكي جديد يعمل بتقنية الجيل الخامس.",
            }
        )
    corpus.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records))
    build_index(corpus, corpus.parent / "idx", encoder, progress=False)
    client = TestClient(
        create_app(corpus.parent / "idx", searcher=Searcher.open(corpus.parent / "idx", encoder))
    )
    for mode in ("hybrid", "dense", "lexical"):
        body = client.get(
            "/search", params={"q": "هاتف ذكي الجيل الخامس", "k": 3, "source": "rare", "mode": mode}
        ).json()
        assert len(body["results"]) == 3 and {r["source"] for r in body["results"]} == {"rare"}, mode
    dated = client.get(
        "/search", params={"q": "هاتف", "k": 30, "date_from": "2018-03-01", "date_to": "2018-04-30"}
    ).json()["results"]
    assert dated and all("2018-03-01" <= r["date"] <= "2018-04-30" for r in dated)
    assert client.get("/search", params={"q": "هاتف", "source": "unknown"}).json()["results"] == []
    assert client.get("/search", params={"q": "هاتف", "category": "sport"}).json()["total"] == 0


def test_batch(client):
    r = client.post(
        "/search/batch",
        json={
            "queries": [
                {"q": "5G cooperation with Russia", "k": 1},
                {"q": "الذكاء الاصطناعي", "k": 2, "mode": "lexical"},
            ]
        },
    )
    responses = r.json()["responses"]
    assert [len(x["results"]) for x in responses] == [1, 2] and responses[0]["results"][0][
        "article_id"
    ] == SEED_000
    assert client.post("/search/batch", json={"queries": []}).status_code == 422
    assert client.post("/search/batch", json={"queries": [{"q": "x"}] * 101}).status_code == 422
    one_bad = client.post("/search/batch", json={"queries": [{"q": ""}]})  # answered in its place
    assert one_bad.status_code == 200 and one_bad.json()["responses"][0]["error"]["code"] == "invalid_request"


def test_articles(client):
    a = client.get(f"/articles/{SEED_000}").json()
    assert a["article_id"] == SEED_000 and a["title"].startswith("مصر تتفق")
    assert all(a["text"][p["start"] : p["end"]] == p["text"] for p in a["passages"])
    missing = client.get("/articles/no-such-id")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_health_ready_stats(client):
    assert client.get("/health").json() == {"status": "ok", "pid": os.getpid()}
    assert client.get("/ready").json()["status"] == "ready"
    stats = client.get("/stats").json()
    assert stats["articles"] == 5 and stats["passages"] > 5 and stats["encoder"]["dimension"] == 384
    assert stats["format_version"] >= 1 and stats["size_bytes"] > 0 and stats["built_at"]


def test_openapi_has_examples(client):
    spec = client.get("/openapi.json").json()
    examples = spec["paths"]["/search"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert {"arabic", "english"} <= set(examples)
    assert client.get("/docs").status_code == 200


BAD_GETS = [
    {"q": ""},
    {"q": "   "},
    {"q": "x" * 1001},
    {"q": "ok", "k": 0},
    {"q": "ok", "k": 101},
    {"q": "ok", "k": "ten"},
    {},
    {"q": "ok", "mode": "fuzzy"},
    {"q": "ok", "date_from": "2018-13-01"},
    {"q": "ok", "date_from": "yesterday"},
    {"q": "ok", "date_from": "2019-01-01", "date_to": "2018-01-01"},
    {"q": "ok", "offset": -1},
    {"q": "ok", "offset": 5000},
    {"q": "ok", "unknown": "1"},
]


@pytest.mark.parametrize("params", BAD_GETS)
def test_bad_input_is_422_with_one_error_shape(client, params):
    r = client.get("/search", params=params)  # unknown parameters too: a typo must not pass silently
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] in ("invalid_request", "invalid_query") and error["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"{broken",
        b"\xff\xfe",
        b'{"q": 5}',
        b'{"q": ["a"]}',
        b"[]",
        b'{"q": "a", "x": 1}',
        b'{"q": "a", "k": true}',
        b"null",
    ],
)
def test_bad_json_bodies_are_422(client, body):
    r = client.post("/search", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["message"]


def test_cors_origins_and_access_log(seed_index, searcher, caplog):
    import logging

    app = create_app(seed_index, searcher=searcher, cors_origins=["https://news.example"])
    c = TestClient(app)
    allowed = c.options(
        "/search", headers={"Origin": "https://news.example", "Access-Control-Request-Method": "GET"}
    )
    assert allowed.headers.get("access-control-allow-origin") == "https://news.example"
    other = c.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    with caplog.at_level(logging.INFO, logger="dalil.access"):
        c.get("/search", params={"q": "روسيا", "k": 1})
    lines = [r.getMessage() for r in caplog.records if r.name == "dalil.access"]
    assert any(line.startswith("method=GET path=/search status=200 ms=") for line in lines)


def test_quoted_phrases_in_the_api_and_on_the_page(client):
    body = client.get("/search", params={"q": "التعاون مع روسيا في «الفضاء الرقمي»", "k": 3}).json()
    assert body["results"] and body["syntax"]["phrases"] == ["الفضاء الرقمي"]
    assert body["syntax"]["unmatched"] == ["الفضاء الرقمي"] and body["syntax"]["required"] == []
    held = client.get("/search", params={"q": '"الجيل الخامس" روسيا', "k": 3}).json()
    assert held["syntax"]["unmatched"] == [] and "الجيل" in held["results"][0]["text"]
    plain = client.get("/search", params={"q": "الجيل الخامس"}).json()
    assert "syntax" not in plain  # no syntax typed: nothing to report
    page = client.get("/", params={"q": "التعاون مع روسيا في «الفضاء الرقمي»"}).text
    assert 'id="no-exact-match"' in page and "No exact match for “الفضاء الرقمي”" in page
    wall = client.get("/", params={"q": '+"الفضاء الرقمي" روسيا'}).text
    assert 'id="no-results"' in wall and "No article holds “الفضاء الرقمي”" in wall
