"""A boot that fails is shown within seconds (body.dj-boot-failed and a .dj-boot-error
that says what failed); a slow boot is not a failed one; the page's own errors are not."""

from pathlib import Path

import pytest
from djreconnect import constants
from support import DemoServer, new_page, wait_connected

pytestmark = pytest.mark.browser

FAILED = "() => document.body && document.body.classList.contains('%s')" % constants.CLASS_BOOT_FAILED
# Detected from the failing request itself, not a timeout: well under the default 60 s.
FEW_SECONDS = 15
# When the page said so, in the page's own time since navigation (a wait from the test can
# be held up by a main thread busy compiling Pyodide).
FAILED_AT = (
    """
new MutationObserver(() => {
  if (window.bootFailedAt === undefined && document.body && document.body.classList.contains('%s'))
    window.bootFailedAt = performance.now();
}).observe(document, {attributes: true, subtree: true, attributeFilter: ['class']});
"""
    % constants.CLASS_BOOT_FAILED
)


class BootServer(DemoServer):
    program = [str(Path(__file__).resolve().with_name("boot_app.py"))]


@pytest.fixture(scope="module")
def transport():
    """Booting does not depend on the transport."""
    return "ws"


@pytest.fixture(scope="module")
def servers(interpreter):
    """Boot-suite backends by their extra flags, started on first use."""
    started = {}

    def get(*flags):
        if flags not in started:
            started[flags] = BootServer("--interpreter", interpreter, *flags).start()
        return started[flags]

    yield get
    for server in started.values():
        server.stop()


def open_page(browser, guard):
    context, page = new_page(browser, guard)
    page.add_init_script(FAILED_AT)
    return context, page


def boot_failure(page, quick=True):
    """Wait for the failure; return what the page says, after checking (``quick``) that
    it said so within a few seconds of the navigation."""
    page.wait_for_function(FAILED, timeout=60_000)
    if quick:
        assert page.evaluate("window.bootFailedAt") < FEW_SECONDS * 1000
    errors = page.locator("." + constants.CLASS_BOOT_ERROR)
    assert errors.count() == 1 and errors.get_attribute("role") == "alert"
    text = errors.inner_text()
    assert text.startswith(constants.BOOT_ERROR_MESSAGE.strip())
    return text


def expected_errors(page, guard, *texts):
    """The failure's own uncaught errors (PyScript's rejections) are expected: drop them."""
    page.wait_for_timeout(300)
    guard.errors = [error for error in guard.errors if not any(text in error for text in texts)]


def still_guarded(page, url):
    """After a failure, a dj-submit form still never submits natively."""
    page.evaluate("window.stillTheSamePage = true")
    page.fill("#title", "kept off the URL")
    page.press("#title", "Enter")
    page.wait_for_timeout(300)
    assert page.evaluate("window.stillTheSamePage") and page.url == url


def test_a_wheel_that_does_not_load_is_shown(browser, servers, guard):
    missing = "/djreconnect/wheels/djreconnect-0.0.0-py3-none-any.whl"
    server = servers("--wheel-url", missing)
    context, page = open_page(browser, guard)
    page.goto(server.url + "/", wait_until="domcontentloaded")
    text = boot_failure(page)
    assert "could not load %s%s" % (server.url, missing) in text and "404" in text
    still_guarded(page, server.url + "/")
    expected_errors(page, guard, "Unable to fetch " + server.url + missing)
    context.close()


def test_an_interpreter_that_does_not_load_is_shown(browser, servers, guard, interpreter):
    missing = "/nowhere/%s.mjs" % interpreter
    server = servers("--interpreter-url", missing)
    context, page = open_page(browser, guard)
    page.goto(server.url + "/", wait_until="domcontentloaded")
    text = boot_failure(page)
    assert "could not load %s%s" % (server.url, missing) in text
    expected_errors(page, guard, "dynamically imported module: " + server.url + missing)
    context.close()


def test_pyscript_that_cannot_be_reached_is_shown(browser, servers, guard):
    server = servers()
    context, page = open_page(browser, guard)
    page.route("**/core.js", lambda route: route.abort("connectionrefused"))  # its host is down
    page.goto(server.url + "/", wait_until="domcontentloaded")
    text = boot_failure(page)
    assert "could not load " in text and text.rstrip().endswith("/dist/core.js")
    context.close()


def test_a_runtime_that_raises_while_starting_is_shown(browser, servers, guard):
    server = servers()
    context, page = open_page(browser, guard)
    page.goto(server.url + "/broken-config", wait_until="domcontentloaded")
    text = boot_failure(page, quick=False)  # once the interpreter is up (Pyodide takes its seconds)
    assert "the runtime raised while starting: ValueError: djreconnect: unknown transport 'carrier-pigeon'" in text
    assert page.evaluate("window.djreconnect === undefined")
    expected_errors(page, guard, "carrier-pigeon")
    context.close()


def test_an_entry_point_that_cannot_import_is_shown(browser, servers, guard):
    server = servers()
    context, page = open_page(browser, guard)
    page.goto(server.url + "/broken-entry", wait_until="domcontentloaded")
    text = boot_failure(page, quick=False)
    # Pyodide and MicroPython word it differently.
    assert "o module named 'djreconnect.not_in_the_wheel'" in text
    context.close()


def test_a_slow_boot_is_shown_as_failed_until_the_runtime_does_start(browser, servers, guard):
    server = servers("--boot-timeout-ms", "1000")
    context, page = open_page(browser, guard)
    held = []
    page.route("**/*.whl", lambda route: held.append(route))
    page.goto(server.url + "/", wait_until="domcontentloaded")
    text = boot_failure(page)
    assert text.endswith("it did not start within 1 s")
    for route in held:
        route.continue_()
    page.unroute("**/*.whl")
    wait_connected(page)
    assert page.locator("." + constants.CLASS_BOOT_ERROR).count() == 0
    assert constants.CLASS_BOOT_FAILED not in page.evaluate("[...document.body.classList]")
    context.close()


def test_the_pages_own_errors_are_not_a_failed_boot(browser, servers, guard):
    server = servers()
    context, page = open_page(browser, guard)
    page.goto(server.url + "/own-errors")
    wait_connected(page)
    assert page.locator("." + constants.CLASS_BOOT_ERROR).count() == 0
    assert constants.CLASS_BOOT_FAILED not in page.evaluate("[...document.body.classList]")
    assert sorted(guard.errors) == ["the page's own bug", "the page's own rejection"]
    guard.errors = []
    context.close()
