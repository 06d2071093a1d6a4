"""The built book works with no network: math is typeset, saved widgets render and no page
logs a JavaScript error."""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("AECORE_SITE") or ROOT / "_build" / "html").resolve()  # as conftest

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _pages():
    return sorted(p for p in SITE.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)


def _chapter_pages():
    return sorted((SITE / "chapters").glob("*.html"))


def test_every_toc_entry_is_built(site):
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    missing = [f for f in files if not (site / f"{f}.html").exists()]
    assert not missing, f"pages in _toc.yml that were not built: {missing}"


def test_site_serves_its_own_javascript(site):
    """No page loads MathJax, require.js or the widget manager from a CDN."""
    for page in _pages():
        html = page.read_text()
        scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
        remote = [s for s in scripts if s.startswith(("http:", "https:", "//"))]
        assert not remote, f"{page.relative_to(site)} loads scripts from the network: {remote}"


@pytest.mark.parametrize("name", ["book/notation", "book/beyond", "chapters/01_linear_autoencoder"])
def test_math_is_typeset_offline(site, open_offline, name):
    p = open_offline(site / f"{name}.html")
    page = p.page
    page.wait_for_selector("mjx-container", timeout=20_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.math')].every(e => e.querySelector('mjx-container'))",
        timeout=20_000,
    )
    n_math = page.evaluate("document.querySelectorAll('.math').length")
    raw = page.evaluate(
        "[...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container')).length"
    )
    text = page.inner_text("article")
    prose = page.evaluate(
        "[...document.querySelectorAll('article p, article li, article td')]"
        ".filter(e => !e.closest('.cell_output, pre, code')).map(e => e.innerText).join('\\n')"
    )
    p.screenshot(name.replace("/", "_") + "_math")
    assert n_math > 0, "the page has no math to check"
    assert raw == 0, f"{raw} of {n_math} math elements were left untypeset"
    assert "\\(" not in text and "\\[" not in text, "raw TeX delimiters left in the page text"
    assert "$" not in prose, "a $ is left in the prose: math that MyST did not parse (blank lines around $$?)"
    assert not p.failed_local, f"files of the site failed to load: {p.failed_local}"


def test_saved_widgets_render_offline(site, open_offline):
    pages = [pg for pg in _chapter_pages() if WIDGET_MIME in pg.read_text()]
    assert pages, "no chapter page carries a saved widget (progress bars are widgets)"
    for pg in pages:
        p = open_offline(pg)
        n_views = p.page.evaluate(
            f"document.querySelectorAll('script[type=\"{WIDGET_MIME}\"]').length"
        )
        p.page.wait_for_selector(".jupyter-widgets", timeout=20_000)
        rendered = p.page.evaluate("document.querySelectorAll('.jupyter-widgets.widget-container, .jupyter-widgets.widget-inline-hbox, .jupyter-widgets.widget-box, .jupyter-widgets').length")
        p.screenshot(pg.stem + "_widgets")
        assert n_views > 0
        assert rendered > 0, f"{pg.name}: {n_views} saved widget views, none rendered"
        assert not p.failed_local, f"{pg.name}: files of the site failed to load: {p.failed_local}"
        assert not p.js_errors, f"{pg.name}: JavaScript errors: {p.js_errors}"


def _page_ids():
    return [str(p.relative_to(SITE)) for p in _pages()] or ["(the site is not built)"]


@pytest.mark.parametrize("name", _page_ids())
def test_no_javascript_error_on_any_page(site, open_offline, name):
    """Every page of the site, opened offline, logs no console error and throws no error."""
    p = open_offline(site / name)
    p.settle()
    p.page.wait_for_timeout(300)  # widgets render after the load event
    assert not p.js_errors, f"{name}: " + "; ".join(p.js_errors)
    assert not p.failed_local, f"{name}: files of the site failed to load: {p.failed_local}"
