"""Browser tests: Playwright (sync API) driving Debian's Chromium against pytest-django's live server.

Fixtures:
  live_url         the live server's base URL ("http://localhost:PORT"); the database is
                   transactional (the server runs in another thread and must see committed rows).
  browser          one headless Chromium for the whole session.
  page             a fresh browser context + page per test, 1024x768 (the store tablet).
  login(page, username, password=PASSWORD)
                   signs in through the real form and waits for the home page.

DJANGO_ALLOW_ASYNC_UNSAFE is set while the browser runs: see the `browser` fixture for why.

Mark every browser test with `@pytest.mark.browser` (`-m "not browser"` skips them).
Users come from tests/conftest.py (associate, manager, ...): they exist in the database before the
browser signs in, with the factories' PASSWORD.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.factories.people import PASSWORD

CHROMIUM = os.environ.get("OMNI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TABLET = {"width": 1024, "height": 768}


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run scripts/ensure_browser.sh")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an asyncio event loop in the test thread for as long as it is
    # started (this fixture lives for the session). Django refuses ORM calls from a thread with a
    # running loop (SynchronousOnlyOperation), which would break every factory and assertion that
    # touches the database in this and any later test. Nothing here is actually async: queries run
    # synchronously between Playwright calls, so lifting the guard is safe. It is lifted only in
    # sessions that start a browser, and restored when the browser stops.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def live_url(live_server, transactional_db) -> str:
    return live_server.url


@pytest.fixture
def page(browser, live_url):
    context = browser.new_context(viewport=TABLET, base_url=live_url, locale="en-US", timezone_id="UTC")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    # An uncaught script error (CSP violation, broken vendored file) fails the test that caused it.
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def login(live_url):
    """`login(page, "associate")`: sign in through the form; returns the page on the home screen."""

    def sign_in(page, username: str, password: str = PASSWORD):
        page.goto(f"{live_url}/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_url}/")
        return page

    return sign_in


def wait_until(page, expression: str, timeout: float = 10.0) -> None:
    """Poll a JavaScript expression until it is truthy.

    Playwright's `page.wait_for_function` builds its predicate with eval inside the page, which our
    content security policy (no 'unsafe-eval') refuses at random; `page.evaluate` runs through the
    DevTools protocol, which the policy does not govern.
    """
    import time

    from playwright.sync_api import Error

    deadline = time.monotonic() + timeout
    while True:
        try:
            if page.evaluate(f"Boolean({expression})"):
                return
        except Error:
            pass  # a navigation replaced the page meanwhile (or the element is not there yet): poll again
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {expression}")
        time.sleep(0.05)
