"""`dalil ingest`: feeds served by a loopback HTTP server started here, JSONL files and folders."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import REPO
from dalil.indexer.ingest import Ingestor, html_to_text
from dalil.indexer.store.check import check_index
from dalil.indexer.store.reader import IndexReader
from dalil.search.searcher import Searcher

P1 = "أعلنت شركة هواوي عن هاتف ذكي جديد يدعم شبكات الجيل الخامس في مصر، وقالت إنه سيطرح في الأسواق قريبا."
P2 = "وأوضحت الشركة أن الهاتف يأتي بكاميرا متطورة وبطارية تدوم يومين كاملين مع الاستخدام المعتاد للهاتف."
P3 = "افتتح وزير التعليم مدرسة جديدة لتعليم البرمجة للأطفال في مدينة أسوان بصعيد مصر هذا الأسبوع الماضي."
PAGE_TEXT = (
    "كشفت وكالة الفضاء المصرية عن قمر صناعي جديد لرصد الأرض صممه مهندسون مصريون بالكامل، "
    "وقالت الوكالة إن القمر سيطلق العام المقبل لمتابعة المحاصيل الزراعية والموارد المائية في الدلتا."
)


def rss(items: list[dict]) -> bytes:
    entries = "".join(
        f"<item><title>{i['title']}</title><link>http://example.org/{i['id']}</link>"
        f"<guid>{i['id']}</guid><pubDate>Mon, 03 Jun 2024 10:00:00 GMT</pubDate>"
        f"<category>tech</category>"
        + (f"<content:encoded><![CDATA[{i['html']}]]></content:encoded>" if "html" in i else "")
        + f"<description><![CDATA[{i.get('summary', '')}]]></description></item>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>أخبار التقنية</title>'
        f"<link>http://example.org/</link><description>test</description>{entries}</channel></rss>"
    ).encode()


ATOM = (
    '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom news</title>'
    "<id>urn:feed</id><updated>2024-06-04T10:00:00Z</updated><entry><title>مدرسة للبرمجة</title>"
    '<id>urn:atom:1</id><link href="http://example.org/atom1"/><updated>2024-06-04T10:00:00Z</updated>'
    f'<content type="html">&lt;p&gt;{P3}&lt;/p&gt;</content></entry></feed>'
).encode()


class Site:
    """A tiny web site on 127.0.0.1: routes are set by each test."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        self.hits: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.hits.append(self.path)
                status, kind, body = site.routes.get(self.path, (404, "text/plain", b"not found"))
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    s = Site()
    yield s
    s.close()


@pytest.fixture
def index(tmp_path, seed_index):
    out = tmp_path / "index"
    shutil.copytree(seed_index, out)
    return out


def _ids(index) -> set[str]:
    reader = IndexReader.open(index)
    try:
        with reader.snapshot() as snap:
            return {r[0] for r in snap.db.execute("SELECT article_id FROM articles")}
    finally:
        reader.close()


def test_a_feed_is_taken_in_once_and_changes_are_updates(site, index, encoder):
    items = [
        {"id": "f1", "title": "هواوي تطلق هاتفا جديدا", "html": f"<p>{P1}</p><p>{P2}</p>", "summary": "هاتف"},
        {"id": "f2", "title": "مدرسة للبرمجة", "summary": f"<p>{P3}</p>"},  # no full content: the summary
    ]
    site.routes["/feed.xml"] = (200, "application/rss+xml", rss(items))
    ingestor = Ingestor(index, [site.url + "/feed.xml"], encoder)
    first = ingestor.run_pass().sources[0]
    assert first.error is None and (first.items, first.indexed) == (2, 2)
    assert {"f1", "f2"} <= _ids(index)
    stored = IndexReader.open(index).article("f1")
    assert stored["text"] == f"{P1}\n\n{P2}" and stored["source"] == "أخبار التقنية"
    assert stored["date"] == "2024-06-03" and stored["url"] == "http://example.org/f1"
    assert Searcher.open(index, encoder).search("مدرسة البرمجة في أسوان", 1)[0].article_id == "f2"

    again = ingestor.run_pass().sources[0]
    assert (again.indexed, again.unchanged) == (0, 2)  # nothing twice

    items[0]["html"] = f"<p>{P1}</p><p>{P3}</p>"
    site.routes["/feed.xml"] = (200, "application/rss+xml", rss(items))
    changed = ingestor.run_pass().sources[0]
    assert (changed.indexed, changed.unchanged) == (1, 1)
    assert IndexReader.open(index).article("f1")["text"] == f"{P1}\n\n{P3}"
    assert check_index(index) == []


def test_every_kind_of_bad_source_is_reported_and_the_others_go_on(site, index, encoder, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/feed"
    site.routes["/atom"] = (200, "application/atom+xml", ATOM)
    site.routes["/html"] = (200, "text/html", b"<html><body><p>just a page</p></body></html>")
    site.routes["/broken"] = (
        200,
        "application/rss+xml",
        b'<?xml version="1.0"?><rss><channel><item><title>x',
    )
    site.routes["/latin1"] = (
        200,
        "application/rss+xml",
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>\xe9\xff</title>'
        b"<item><guid>e1</guid><title>caf\xe9</title><description>x</description></item></channel></rss>",
    )
    site.routes["/error"] = (500, "text/plain", b"boom")
    sources = [
        closed,
        site.url + "/missing",
        site.url + "/error",
        site.url + "/html",
        site.url + "/broken",
        site.url + "/latin1",
        str(tmp_path / "nowhere.jsonl"),
        site.url + "/atom",
    ]
    reports = {r.source: r for r in Ingestor(index, sources, encoder).run_pass().sources}
    assert "unreachable" in reports[closed].error
    assert "HTTP 404" in reports[site.url + "/missing"].error
    assert "HTTP 500" in reports[site.url + "/error"].error
    assert "not a feed" in reports[site.url + "/html"].error
    assert "broken XML" in reports[site.url + "/broken"].error
    assert "bad character encoding" in reports[site.url + "/latin1"].error
    assert "does not exist" in reports[str(tmp_path / "nowhere.jsonl")].error
    assert reports[site.url + "/atom"].error is None and reports[site.url + "/atom"].indexed == 1
    assert IndexReader.open(index).article("urn:atom:1")["text"] == P3


def test_short_summaries_can_be_completed_from_the_linked_page(site, index, encoder):
    page = f"<html><head><title>x</title></head><body><nav>menu</nav><article><p>{PAGE_TEXT}</p></article>"
    page += "<footer>© site</footer></body></html>"
    site.routes["/p1"] = (200, "text/html; charset=utf-8", page.encode())
    feed = rss([{"id": "s1", "title": "قمر صناعي مصري", "summary": "قمر صناعي جديد"}]).replace(
        b"http://example.org/s1", (site.url + "/p1").encode()
    )
    site.routes["/feed"] = (200, "application/rss+xml", feed)
    Ingestor(index, [site.url + "/feed"], encoder, fetch_pages=True).run_pass()
    text = IndexReader.open(index).article("s1")["text"]
    assert "وكالة الفضاء المصرية" in text and "menu" not in text


def test_files_and_folders_new_files_are_picked_up(index, encoder, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    ingestor = Ingestor(index, [str(folder)], encoder)
    assert ingestor.run_pass().sources[0].items == 0  # an empty watched folder is no error
    (folder / "a.jsonl").write_text(
        json.dumps({"id": "j1", "title": "هاتف", "text": P1}, ensure_ascii=False) + "\n"
    )
    assert ingestor.run_pass().sources[0].indexed == 1
    (folder / "b.jsonl").write_text(
        json.dumps({"id": "j2", "title": "مدرسة", "text": P3}, ensure_ascii=False) + "\n"
    )
    second = ingestor.run_pass().sources[0]
    assert (second.items, second.indexed) == (1, 1)  # a.jsonl is unchanged: not even read again
    assert {"j1", "j2"} <= _ids(index)


def test_html_fragments_become_paragraphs():
    assert html_to_text("<p>أ <b>ب</b></p><p>ج<br>د</p><script>x()</script>") == "أ ب\n\nج\n\nد"


def test_the_command_reports_sources_and_exit_codes(site, index):
    site.routes["/feed"] = (200, "application/rss+xml", rss([{"id": "c1", "title": "هاتف", "html": P1}]))
    cmd = [sys.executable, "-m", "dalil.api.cli", "ingest", "--index", str(index), "--once"]
    ok = subprocess.run([*cmd, site.url + "/feed"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert f"ingest: {site.url}/feed: 1 items, 1 indexed, 0 unchanged" in ok.stdout
    bad = subprocess.run(
        [*cmd, site.url + "/feed", site.url + "/nope"], cwd=REPO, capture_output=True, text=True
    )
    assert bad.returncode == 3 and "HTTP 404" in bad.stderr and "1 unchanged" in bad.stdout
    usage = subprocess.run(
        [*cmd, "--interval", "0", site.url + "/feed"], cwd=REPO, capture_output=True, text=True
    )
    assert usage.returncode == 2
