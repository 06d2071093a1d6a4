"""Open the built site in headless Chromium with every network request blocked.

Only ``file://`` requests are allowed: whatever the page needs from the internet fails, so a
test that passes here passes in a classroom with no network. Screenshots go to
``artifacts/site/``. ``AECORE_SITE=/path/to/html`` checks another build (default: ``_build/html``).
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("AECORE_SITE") or ROOT / "_build" / "html").resolve()
ARTIFACTS = ROOT / "artifacts" / "site"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def site() -> Path:
    if not (SITE / "index.html").exists():
        pytest.fail("the site is not built: run `make book` (or `make build-strict`) first")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return SITE


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class OfflinePage:
    """A page opened from disk with all non-file requests aborted and recorded."""

    def __init__(self, browser, path: Path):
        self.context = browser.new_context(viewport={"width": 1280, "height": 1600})
        self.blocked: list[str] = []
        self.failed_local: list[str] = []
        self.errors: list[str] = []  # uncaught exceptions
        self.console_errors: list[str] = []  # console messages of type "error"
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", self._console)
        self.page.on(
            "requestfailed",
            lambda req: self.failed_local.append(req.url) if req.url.startswith("file://") else None,
        )
        self.page.goto(path.as_uri(), wait_until="load")

    def _route(self, route):
        url = route.request.url
        if url.startswith(("file://", "data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def _console(self, msg):
        if msg.type == "error":
            where = (msg.location or {}).get("url", "")
            self.console_errors.append(f"{msg.text} ({where.rsplit('/', 1)[-1]})")

    @property
    def js_errors(self) -> list[str]:
        """Page errors and console errors so far."""
        return [f"page error: {e}" for e in self.errors] + [
            f"console error: {e}" for e in self.console_errors]

    def settle(self, timeout_ms: int = 20_000) -> None:
        """Wait until nothing loads any more and MathJax (if the page has it) has typeset."""
        self.page.wait_for_load_state("networkidle", timeout=timeout_ms)
        self.page.evaluate(
            "async () => { if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
            " await MathJax.startup.promise; }")

    def screenshot(self, name: str) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def open_offline(browser):
    opened = []

    def _open(path: Path) -> OfflinePage:
        p = OfflinePage(browser, path)
        opened.append(p)
        return p

    yield _open
    for p in opened:
        p.close()
