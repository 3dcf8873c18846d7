"""A real browser against `dalil serve`: headless Debian chromium driven by Playwright.

Marked `browser` (run with `-m ""` or `-m browser`; CI runs it). Screenshots are written to
artifacts/ (ignored by git) as test artifacts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, free_port

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "artifacts"
SEED_002_TITLE = "طلعت يبحث مع سفير الصين"


def _serve(index):
    """`dalil serve` on the index, until the generator is closed: yields its URL once it is ready."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dalil.api.cli", "serve", "--index", str(index), "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"dalil serve exited: {proc.stdout.read().decode()}")
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("dalil serve did not become ready")
    yield url
    proc.terminate()  # graceful shutdown on SIGTERM; uvicorn then re-raises the signal, by convention
    assert proc.wait(timeout=20) in (0, -15)


@pytest.fixture(scope="module")
def server(seed_index):
    yield from _serve(seed_index)


@pytest.fixture(scope="module")
def news_server(news_index):
    yield from _serve(news_index)


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


def test_search_page_in_a_real_browser(server, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(server + "/")
    assert page.evaluate("document.activeElement.id") == "q"  # focus on load
    assert page.locator("#empty-state").is_visible()

    page.keyboard.type("الذكاء الاصطناعي")
    page.keyboard.press("Enter")  # Enter searches
    page.wait_for_selector("#results article.result")
    first = page.locator("#results article.result").first
    assert SEED_002_TITLE in first.locator("h2").inner_text()
    assert first.get_attribute("dir") == "rtl" and first.get_attribute("lang") == "ar"
    assert first.locator(".snippet mark").count() >= 2
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert "ms" in page.locator("#status").inner_text()
    page.screenshot(path=str(ARTIFACTS / "search-arabic.png"), full_page=True)

    page.fill("#q", "artificial intelligence cooperation with China")
    page.keyboard.press("Enter")
    page.wait_for_url("**q=artificial*")
    page.wait_for_selector("#results article.result")
    assert SEED_002_TITLE in page.locator("#results article.result h2").first.inner_text()
    assert page.locator("html").get_attribute("dir") == "ltr"  # the UI follows an English question
    english_first = page.locator("#results article.result").first
    assert english_first.get_attribute("dir") == "rtl"
    marked = english_first.locator(".snippet mark").all_inner_texts()  # translations are marked
    assert {"الصين", "الصينى", "التعاون", "الذكاء"} & set(marked), marked
    page.screenshot(path=str(ARTIFACTS / "search-english.png"), full_page=True)

    page.locator("#results article.result h2 a").first.click()
    page.wait_for_selector("article.full p.hit")
    assert page.url.startswith(server + "/a/002_31814ce167dde68d")
    assert page.locator("article.full").get_attribute("dir") == "rtl"
    page.screenshot(path=str(ARTIFACTS / "article.png"), full_page=True)


def test_page_states_and_phone_width(server, browser):
    page = browser.new_page(viewport={"width": 375, "height": 740})
    page.goto(server + "/?q=" + "زززززززز")
    assert page.locator("#results, #no-results").count() == 1
    page.goto(server + "/?q=ok&date_from=not-a-date")
    assert page.locator("[role=alert]").is_visible()
    page.goto(server + "/?q=" + "الذكاء الاصطناعي")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375  # nothing overflows at phone width
    page.screenshot(path=str(ARTIFACTS / "phone.png"), full_page=True)
    page.goto(server + "/a/no-such-article")
    assert page.locator("[role=alert]").is_visible()


def test_desktop_layout_status_line_and_offline_docs(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server + "/?q=" + "الجيل الخامس")
    page.wait_for_selector("#results article.result")
    rows = {round(page.locator(f"label[for={name}]").bounding_box()["y"]) for name in FILTERS}
    assert len(rows) == 1, rows  # the four filters share one line at 1280 px ("To" used to wrap)
    arabic, english = page.locator("#status bdi").all()
    assert arabic.get_attribute("lang") == "ar" and english.get_attribute("lang") == "en"
    # in a right-to-left page the Arabic half is read first, on the right, each half kept whole
    assert arabic.bounding_box()["x"] > english.bounding_box()["x"]
    assert english.inner_text().endswith(" ms") and "articles" in english.inner_text()
    page.screenshot(path=str(ARTIFACTS / "desktop-1280.png"))
    external = []
    page.on("request", lambda r: external.append(r.url) if not r.url.startswith(server) else None)
    page.goto(server + "/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)  # rendered from local files
    assert "dalil" in page.locator(".swagger-ui .info .title").inner_text()
    assert external == [], external
    page.screenshot(path=str(ARTIFACTS / "docs.png"))


FILTERS = ("mode", "source", "date_from", "date_to")


def _dates(page) -> list[str]:
    metas = page.locator("#results article.result .meta").all_inner_texts()
    return [m for meta in metas for m in meta.split(" · ") if len(m) == 10 and m[4] == "-"]


def test_facets_sort_phrase_and_related_in_a_browser(news_server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(news_server + "/?q=" + "وسائل التواصل الاجتماعي")
    page.wait_for_selector("#facets .facet")
    results, facets = page.locator("#results").bounding_box(), page.locator("#facets").bounding_box()
    assert facets["x"] + facets["width"] <= results["x"]  # right to left: results first, facets on the left
    rows = {round(page.locator(f"label[for={name}]").bounding_box()["y"]) for name in FILTERS}
    assert len(rows) == 1, rows  # the four filters still share one line at 1280 px
    status, sort = page.locator("#status").bounding_box(), page.locator("#sort").bounding_box()
    assert status["y"] <= sort["y"] < status["y"] + status["height"]  # the sort menu on the status line
    page.screenshot(path=str(ARTIFACTS / "facets.png"))

    # a source facet, from the keyboard: focus its link and press Enter
    entry = page.locator("#facet-source a").first
    source = entry.locator("bdi").inner_text()
    entry.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**source=*")
    chosen = page.locator("#facet-source a.chosen")
    assert chosen.count() == 1 and source in chosen.inner_text()
    metas = page.locator("#results article.result .meta").all_inner_texts()
    assert metas and all(source in m for m in metas)
    page.screenshot(path=str(ARTIFACTS / "facet-chosen.png"))
    chosen.click()  # the chosen entry lifts its filter
    page.wait_for_url(lambda url: "source=" not in url)

    # the sort menu: newest first, dates descending, said so above the results
    page.select_option("#sort", "newest")
    page.wait_for_url("**sort=newest*")
    page.wait_for_selector("#sort-note")
    dates = _dates(page)
    assert len(dates) >= 3 and dates == sorted(dates, reverse=True)
    page.screenshot(path=str(ARTIFACTS / "sort-newest.png"))

    # phrase and exclusion typed in the box
    page.fill("#q", '"التواصل الاجتماعي" -فيسبوك')
    page.keyboard.press("Enter")
    page.wait_for_selector("#syntax")
    chips = page.locator("#syntax .chip").all_inner_texts()
    assert any("التواصل الاجتماعي" in c for c in chips) and any("فيسبوك" in c for c in chips)
    assert page.locator("#results article.result").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "phrase.png"))

    # related stories under an article
    page.locator("#results article.result h2 a").first.click()
    page.wait_for_selector("#related li a")
    related = page.locator("#related li a")
    assert related.count() >= 3
    target = related.first.get_attribute("href")
    page.screenshot(path=str(ARTIFACTS / "related.png"), full_page=True)
    related.first.click()
    page.wait_for_url("**" + target)
    assert page.locator("article.full").is_visible()


def test_suggestions_while_typing(news_server, browser):
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.goto(news_server + "/")
    page.locator("#q").press_sequentially("ف", delay=80)
    page.wait_for_selector("#suggestions [role=option]")
    options = page.locator("#suggestions [role=option]")
    texts = options.all_inner_texts()
    assert texts and all(t.startswith("ف") for t in texts)
    assert page.locator("#q").get_attribute("aria-expanded") == "true"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert options.nth(1).get_attribute("aria-selected") == "true"
    assert page.locator("#q").get_attribute("aria-activedescendant") == "suggestion-1"
    box, listbox = page.locator("#q").bounding_box(), page.locator("#suggestions").bounding_box()
    assert listbox["y"] >= box["y"] + box["height"] - 1  # under the box
    page.screenshot(path=str(ARTIFACTS / "suggestions.png"))
    page.keyboard.press("Enter")  # takes the marked suggestion and searches it
    page.wait_for_selector("#results article.result, #no-results")
    assert page.locator("#q").input_value() == texts[1]
    page.keyboard.press("Escape")


def test_no_close_match_is_said_above_dimmed_results(news_server, browser):
    """A question the news cannot answer: the notice above, the nearest results still below, dimmed;
    a question it answers: no notice."""
    from urllib.parse import quote

    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(news_server + "/?q=" + quote("ما أفضل وصفة لتحضير الكشري في المنزل؟"))
    notice = page.locator("#no-close-match")
    assert notice.is_visible()
    assert "No close match" in notice.inner_text() and "لا يوجد تطابق قريب" in notice.inner_text()
    assert page.locator("#results").get_attribute("class") == "dimmed"
    assert page.locator("#results article.result").count() >= 1  # still shown, below the notice
    opacity = page.locator("#results article.result").first.evaluate("e => getComputedStyle(e).opacity")
    assert float(opacity) < 1
    notice_box, first_box = (
        notice.bounding_box(),
        page.locator("#results article.result").first.bounding_box(),
    )
    assert notice_box["y"] + notice_box["height"] <= first_box["y"]  # above the results
    page.screenshot(path=str(ARTIFACTS / "no-close-match.png"))

    page.fill("#q", "ميزة جديدة من إنستغرام لقصص الموسيقى")
    page.keyboard.press("Enter")
    page.wait_for_url("**q=*")
    page.wait_for_selector("#results article.result")
    assert page.locator("#no-close-match").count() == 0
    assert page.locator("#results").get_attribute("class") is None


def test_counts_dates_sources_and_directions_read_right(server, news_server, browser):
    """Arabic counts in the status line, no facet box with nothing to count, date fields that say
    their format, sources by name, and the Arabic notice's full stop at its sentence's end."""
    import re
    from urllib.parse import quote

    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server + "/?q=" + quote("الجيل الخامس"))
    page.wait_for_selector("#results article.result")
    arabic = page.locator("#status bdi[lang=ar]").inner_text()
    assert arabic in ("مقال واحد", "مقالان") or re.fullmatch(r"\d+ مقالات", arabic), arabic
    assert page.locator("#facets").count() == 0  # the seed articles have no source, date or category
    field = page.locator("#date_from")
    assert field.get_attribute("type") == "text" and field.get_attribute("placeholder") == "YYYY-MM-DD"
    assert "سنة-شهر-يوم" in page.locator("#date-format").inner_text()
    page.screenshot(path=str(ARTIFACTS / "wording-seed.png"))

    page.goto(news_server + "/?q=" + quote("فيسبوك"))
    page.wait_for_selector("#facets .facet")
    shown = page.locator("#facet-source bdi").all_inner_texts()
    assert shown and not any("/" in s for s in shown), shown  # bbcarabic, not ant-multisource/bbcarabic
    options = page.locator("#source option").all_inner_texts()
    assert "bbcarabic" in options
    page.screenshot(path=str(ARTIFACTS / "wording-sources.png"))

    page.goto(news_server + "/?q=" + quote("ما أفضل وصفة لتحضير الكشري في المنزل؟"))
    page.set_viewport_size({"width": 1280, "height": 500})
    sentence = page.locator("#no-close-match p[lang=ar]")
    assert sentence.evaluate("e => getComputedStyle(e).direction") == "rtl"
    # in an English (left-to-right) page too: the paragraph keeps its own direction
    page.evaluate("document.documentElement.dir = 'ltr'")
    assert sentence.evaluate("e => getComputedStyle(e).direction") == "rtl"
    box = sentence.bounding_box()
    # the full stop ends the sentence: on the left end of the last line, not at its start on the right
    last = sentence.evaluate(
        "e => { const r = document.createRange(); const t = e.lastChild;"
        " r.setStart(t, t.length - 1); r.setEnd(t, t.length); return r.getBoundingClientRect().x; }"
    )
    assert last < box["x"] + box["width"] / 2
    page.screenshot(path=str(ARTIFACTS / "wording-notice-ltr.png"))
