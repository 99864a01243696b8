"""The built book, as a reader's browser (Debian's Chromium) sees it."""

import json
from pathlib import Path

import pytest
import yaml

from dnnbook.book import pages, pipeline
from tests.browser_check import (
    CHROMIUM,
    CHROMIUM_ARGS,
    clipped_code,
    math_problems,
    open_page,
    page_problems,
    serve,
)
from tests.conftest import ROOT

pytestmark = pytest.mark.browser
HTML = pipeline.HTML
SCREENSHOTS = pipeline.BUILD / "screenshots"
CHAPTERS = pipeline.chapters(ROOT)
REPO = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].removeprefix(
    "https://github.com/"
)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make browser-deps` installs Debian's chromium "
            "(or set $CHROMIUM to a Chromium or Chrome binary)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built book at {HTML}: run `python -m dnnbook all --profile quick` first")
    with serve(HTML) as url:
        yield url


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.name)
def test_chapter_page_as_a_reader_sees_it(browser, site, chapter):
    executed = pipeline.EXECUTED / "chapters" / chapter.path.name
    statements = [c["statement"] for c in pages.claims_in(executed)]
    page, errors = open_page(browser, f"{site}/chapters/{chapter.name}.html")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{chapter.name}.png"), full_page=True)
    problems = page_problems(page, errors, statements)
    assert statements, f"{chapter.name} printed no claims"
    assert page.locator(".cell_output img").count() > 0, f"{chapter.name} shows no figure"
    colab = page.eval_on_selector_all(
        "a[href*='colab.research.google.com']", "as => as.map(a => a.href)"
    )
    want = f"https://colab.research.google.com/github/{REPO}/blob/main/chapters/{chapter.path.name}"
    assert colab and all(h == want for h in colab), f"Colab links {colab} should all be {want}"
    page.close()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", ["index", "claims", "sweep", "defaults", "article", "status"])
def test_front_pages_load_cleanly(browser, site, name):
    page, errors = open_page(browser, f"{site}/{name}.html")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    problems = page_problems(page, errors)
    landed = page.url
    page.close()
    assert not problems, "\n".join(problems)
    if name == "index":  # a redirect to the first page of the book
        assert landed.endswith("/intro.html"), landed


def _pages_with_formulas() -> list[str]:
    return sorted(
        p.stem
        for p in (HTML / "chapters").glob("*.html")
        if 'class="math' in p.read_text(encoding="utf-8")
    )


def test_formulas_render_with_the_network_blocked(browser, site):
    """MathJax is served by the book itself: offline, every formula is typeset, none left as raw TeX."""
    with_math = _pages_with_formulas()
    assert with_math, f"no built chapter page in {HTML / 'chapters'} has a formula"
    for name in with_math:
        blocked: list[str] = []
        page, errors = open_page(
            browser, f"{site}/chapters/{name}.html", offline=True, blocked=blocked
        )
        problems = math_problems(page)
        typeset = page.locator("mjx-container").count()
        page.close()
        assert typeset > 0 and not problems, f"{name}: " + "; ".join(problems)
        assert not blocked, f"{name} asks the internet for {blocked}"
        assert not errors, f"{name}: {errors}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.name)
def test_chapter_page_says_how_it_was_run(browser, site, chapter):
    run = json.loads(pipeline.STATUS.read_text())[chapter.name]
    page, _ = open_page(browser, f"{site}/chapters/{chapter.name}.html")
    banners = page.locator(".dnnbook-run-banner").count()
    text = page.locator(".dnnbook-run-banner").first.inner_text() if banners else ""
    title_above = page.evaluate(
        "() => { const b = document.querySelector('.dnnbook-run-banner');"
        " const h = document.querySelector('h1');"
        " return !!(b && h && (h.compareDocumentPosition(b) & 4)); }"
    )
    page.close()
    assert banners == 1, f"{chapter.name} has {banners} run banners"
    for part in (
        f"profile {run['profile']}",
        f"backend {run['backend']}",
        "seeds ",
        "hardware ",
        f"in {run['seconds']} s",
        run["date"],
    ):
        assert part in text, f"{chapter.name}: {part!r} missing from the banner {text!r}"
    assert title_above, f"{chapter.name}: the banner should sit under the title"


def test_table_of_contents_reaches_every_chapter(browser, site):
    page, _ = open_page(browser, f"{site}/index.html")
    links = page.eval_on_selector_all("nav a.reference.internal", "as => as.map(a => a.href)")
    page.close()
    for chapter in CHAPTERS:
        assert any(h.endswith(f"chapters/{chapter.name}.html") for h in links), (
            f"TOC misses {chapter.name}"
        )


def test_claims_index_lists_exactly_the_printed_claims(browser, site):
    printed = []
    for chapter in CHAPTERS:
        printed += [
            c["statement"]
            for c in pages.claims_in(pipeline.EXECUTED / "chapters" / chapter.path.name)
        ]
    page, _ = open_page(browser, f"{site}/claims.html")
    rows = page.eval_on_selector_all(
        "table tbody tr", "rs => rs.map(r => r.cells[1].innerText.trim())"
    )
    page.close()
    assert sorted(rows) == sorted(s.strip() for s in printed)


def test_status_page_has_every_chapter(browser, site):
    page, _ = open_page(browser, f"{site}/status.html")
    text = page.inner_text("body")
    page.close()
    status = json.loads(pipeline.STATUS.read_text())
    for chapter in CHAPTERS:
        assert chapter.name in text and chapter.name in status


PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
BROKEN_PAGE = f"""<html><body><h1>A page</h1>
<img src="missing.png"><img src="{PIXEL}">
<div class="output traceback"><pre>Traceback (most recent call last):
ValueError: boom</pre></div>
<script>console.error("something broke")</script>
</body></html>"""
GOOD_PAGE = f"""<html><body><h1>A page</h1><p>✓ the claim holds — 1 vs 0</p>
<img src="{PIXEL}"></body></html>"""


def test_the_checks_catch_a_broken_image_an_error_output_and_a_missing_claim(browser, tmp_path):
    (tmp_path / "broken.html").write_text(BROKEN_PAGE)
    (tmp_path / "good.html").write_text(GOOD_PAGE)
    with serve(tmp_path) as url:
        page, errors = open_page(browser, f"{url}/broken.html")
        problems = page_problems(page, errors, ["a claim that is not there"])
        page.close()
        page, errors = open_page(browser, f"{url}/good.html")
        good = page_problems(page, errors, ["the claim holds"])
        page.close()
    text = "\n".join(problems)
    assert "image did not load: missing.png" in text
    assert "error output" in text and "Traceback" in text
    assert "something broke" in text
    assert "claim not visible" in text
    assert good == []


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.name)
def test_no_code_block_is_clipped_in_a_1280_px_window(browser, site, chapter):
    """Every code cell, the hidden ones opened, fits its box at 1,280 px: no reader scrolls."""
    page, _ = open_page(browser, f"{site}/chapters/{chapter.name}.html", width=1280)
    clipped = clipped_code(page)
    page.close()
    assert not clipped, f"{chapter.name}: " + "; ".join(clipped)


@pytest.mark.parametrize("name", ["defaults", "article"])
def test_cited_claims_link_to_their_boxes(browser, site, name):
    """Each row of the defaults page and of "The article, checked" links to a claim box that
    is on its chapter page."""
    page, _ = open_page(browser, f"{site}/{name}.html")
    links = page.eval_on_selector_all("a[href*='#claim-']", "as => as.map(a => a.href)")
    page.close()
    assert links, f"{name} links to no claim"
    by_page: dict[str, set[str]] = {}
    for href in links:
        target, _, anchor = href.partition("#")
        by_page.setdefault(target, set()).add(anchor)
    missing = []
    for target, anchors in by_page.items():
        page, _ = open_page(browser, target)
        ids = set(page.eval_on_selector_all("[id^='claim-']", "es => es.map(e => e.id)"))
        page.close()
        missing += [f"{target}#{a}" for a in sorted(anchors - ids)]
    assert not missing, f"{name} links to claims that are not there: {missing}"


def test_the_clipping_check_catches_a_long_line(browser, tmp_path):
    long = "x = " + "1 + " * 80 + "1"
    (tmp_path / "wide.html").write_text(
        f"<html><body style='width:600px'><div class='highlight'><pre style='overflow:auto'>"
        f"{long}</pre></div><div class='highlight'><pre>short</pre></div></body></html>"
    )
    with serve(tmp_path) as url:
        page, _ = open_page(browser, f"{url}/wide.html", width=1280)
        clipped = clipped_code(page)
        page.close()
    assert len(clipped) == 1 and "px past the edge: x = 1 + 1" in clipped[0]
