"""What a reader's browser must see on every page of the built book."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from contextlib import contextmanager
from pathlib import Path

# Debian's chromium; elsewhere $CHROMIUM (GitHub's Ubuntu images: /usr/bin/chromium or /usr/bin/google-chrome)
CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Console messages of the theme itself that are not failures of the book, and the DNS failure
# of external hosts (a badge image) on a machine without internet: readers online load them.
# A request aborted by ``open_page(offline=True)`` is reported in its ``blocked`` list instead.
BENIGN_CONSOLE = (
    "Got invalid theme mode",
    "Failed to load resource: net::ERR_NAME_NOT_RESOLVED",
    "Failed to load resource: net::ERR_INTERNET_DISCONNECTED",
)
ERROR_SELECTORS = (
    ".output.traceback",
    ".output.error",
    ".output.stderr",
    "div.stderr",
    "pre.error",
)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@contextmanager
def serve(root: Path):
    """Serve ``root`` on 127.0.0.1 (a free port); yields the base URL."""
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def is_local(url: str) -> bool:
    """Whether ``url`` is served by this machine (a file, inline data or localhost)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme in ("file", "data", "blob", "about") or parts.hostname in (
        "127.0.0.1",
        "localhost",
    )


def open_page(
    browser,
    url: str,
    *,
    offline: bool = False,
    blocked: list[str] | None = None,
    width: int = 1200,
):
    """Load ``url`` in a new page ``width`` pixels wide; return the page and the console errors
    it logged. ``offline`` aborts every request that would leave the machine (and records it in
    ``blocked``)."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    if offline:

        def route(r):
            if is_local(r.request.url):
                r.continue_()
            else:
                if blocked is not None:
                    blocked.append(r.request.url)
                r.abort("internetdisconnected")

        page.route("**/*", route)
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith(BENIGN_CONSOLE)
            else None
        ),
    )
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    # a request the browser cancels because the page navigates on (index.html redirects at
    # once) is not a broken resource; any other failure of a local request is
    page.on(
        "requestfailed",
        lambda req: (
            errors.append(f"request failed: {req.url} ({req.failure})")
            if req.url.startswith(url.split("/", 3)[0] + "//" + url.split("/", 3)[2])
            and req.failure != "net::ERR_ABORTED"
            else None
        ),
    )
    page.on(
        "response",
        lambda r: errors.append(f"HTTP {r.status} for {r.url}") if r.status >= 400 else None,
    )
    response = page.goto(url)
    if response is None or not response.ok:
        errors.append(f"HTTP {response.status if response else 'no response'} for {url}")
    page.wait_for_load_state("networkidle")
    return page, errors


def math_problems(page) -> list[str]:
    """What is wrong with a page's formulas: none typeset by MathJax, or TeX left raw."""
    problems = []
    if page.evaluate("() => !!(window.MathJax && MathJax.startup && MathJax.startup.promise)"):
        page.evaluate("() => MathJax.startup.promise")  # typesetting done
    else:
        problems.append("MathJax did not load")
    typeset = page.locator("mjx-container").count()
    math = page.locator(".math").count()
    if math and typeset < math:
        problems.append(f"{math - typeset} of {math} formulas not typeset by MathJax")
    text = (
        page.inner_text("article") if page.locator("article").count() else page.inner_text("body")
    )
    for raw in ("\\(", "\\["):
        if raw in text:
            at = text.index(raw)
            problems.append(f"raw TeX on the page: {text[max(0, at - 30) : at + 50]!r}")
    return problems


def page_problems(page, console_errors: list[str], claim_statements: list[str] = ()) -> list[str]:
    """Everything wrong with a loaded page, as readable sentences (empty when all is well)."""
    problems = [f"console error: {e}" for e in console_errors]
    broken = page.eval_on_selector_all(
        "img",
        "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'))",
    )
    problems += [f"image did not load: {src}" for src in broken]
    for selector in ERROR_SELECTORS:
        n = page.locator(selector).count()
        if n:
            problems.append(f"{n} error output(s) on the page ({selector})")
    text = page.inner_text("body")
    for marker in ("Traceback (most recent call last)", "ClaimError", "Error: "):
        if marker in text:
            problems.append(f"error text on the page: {marker!r}")
    for statement in claim_statements:
        # the statement may also sit in the claim cell's code, hidden until opened: the
        # claim's box must be visible, whatever else holds the same words
        loc = page.get_by_text(statement, exact=False)
        if not any(loc.nth(i).is_visible() for i in range(loc.count())):
            problems.append(f"claim not visible: {statement[:60]}...")
    return problems


# every code block of a page, hidden ones (hide-input, in a closed <details>) opened first
CLIPPED_CODE = """() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  return Array.from(document.querySelectorAll('div.cell_input pre, div.highlight pre'))
    .filter(p => p.clientWidth > 0 && p.scrollWidth > p.clientWidth + 1)
    .map(p => `${p.scrollWidth - p.clientWidth} px past the edge: `
              + p.innerText.split('\\n').reduce((a, b) => b.length > a.length ? b : a, '')
                  .slice(0, 90));
}"""


def clipped_code(page) -> list[str]:
    """The code blocks of a loaded page whose text runs past their box (a reader would have to
    scroll sideways), each with its longest line."""
    return page.evaluate(CLIPPED_CODE)
