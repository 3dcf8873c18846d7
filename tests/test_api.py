"""The minimal HTTP API over the seed index."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app


@pytest.fixture(scope="module")
def client(seed_index, searcher):
    return TestClient(create_app(seed_index, searcher=searcher))


def test_search_returns_ranked_passages(client):
    r = client.get("/search", params={"q": "5G cooperation with Russia", "k": 3})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["results"][0]["article_id"] == "000_5e840d295c91c543" and len(body["results"]) == 3
    assert "روسيا".encode() in r.content  # Arabic as characters, not \\u escapes


@pytest.mark.parametrize(
    "params",
    [
        {"q": ""},
        {"q": "   "},
        {"q": "ok", "k": 0},
        {"q": "ok", "k": 101},
        {"q": "ok", "k": "ten"},
        {},
        {"q": "x" * 1001},
    ],
)
def test_bad_requests_are_422(client, params):
    assert client.get("/search", params=params).status_code == 422
