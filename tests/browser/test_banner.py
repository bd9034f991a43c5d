"""The banner in the app's words, in a real Chromium against a real server that is killed:
texts set in Settings (the demo's flags) and texts a page sets in its own config."""

import json
import re

import pytest
from support import new_page, wait_connected

pytestmark = pytest.mark.browser

ATTEMPTS = 3
BACKOFF = ["--backoff-min-ms", "100", "--backoff-base-ms", "150", "--backoff-max-ms", "300"]
RECONNECTING = "Verbindung unterbrochen: Versuch {attempt} von {max} …"
FAILED = "Keine Verbindung nach {attempt} von {max} Versuchen ({reason}) {kein Platzhalter}"
RETRY = "Erneut versuchen"


@pytest.fixture(scope="module")
def server_flags():
    return BACKOFF + [
        "--max-attempts",
        str(ATTEMPTS),
        "--banner-reconnecting",
        RECONNECTING,
        "--banner-failed",
        FAILED,
        "--banner-retry",
        RETRY,
        # Every attempt shows at once (the grace period before the banner is tested in test_resume).
        "--banner-delay-ms",
        "0",
    ]


# Records every text the banner shows, with its button's and its accessibility attributes.
RECORDER = """() => {
  window.djBanners = [];
  const note = () => {
    const banner = document.querySelector('.dj-reconnecting-banner');
    if (!banner) return;
    const button = banner.querySelector('button');
    const text = banner.firstChild && banner.firstChild.nodeType === 3 ? banner.firstChild.data : null;
    const seen = {state: window.djreconnect.state, text: text, button: button ? button.textContent : null,
                  role: banner.getAttribute('role'), live: banner.getAttribute('aria-live')};
    const last = window.djBanners[window.djBanners.length - 1];
    if (!last || JSON.stringify(last) !== JSON.stringify(seen)) window.djBanners.push(seen);
  };
  window.djBannerWatch && window.djBannerWatch.disconnect();
  window.djBannerWatch = new MutationObserver(note);
  window.djBannerWatch.observe(document.documentElement,
    {childList: true, subtree: true, characterData: true, attributes: true});
}"""


def banners(page):
    return page.evaluate("window.djBanners")


def drop_until_failed(page, server):
    page.evaluate(RECORDER)
    server.kill()
    page.wait_for_function("window.djreconnect.state === 'failed'", timeout=30_000)
    return banners(page)


def retry_after_restart(page, server, retry_text):
    server.start()
    button = page.locator(".dj-reconnect-retry")
    assert button.inner_text() == retry_text
    button.click()
    wait_connected(page, timeout=20_000)
    assert page.locator(".dj-reconnecting-banner").count() == 0


def assert_announced(records):
    for record in records:
        assert (record["role"], record["live"]) == ("status", "polite"), record


def test_settings_texts_show_while_reconnecting_and_when_failed(live_page, server):
    page = live_page
    records = drop_until_failed(page, server)
    assert_announced(records)
    reconnecting = [r["text"] for r in records if r["state"] == "reconnecting"]
    assert reconnecting == [
        "Verbindung unterbrochen: Versuch %d von %d …" % (n, ATTEMPTS) for n in range(1, ATTEMPTS + 1)
    ]
    failed = records[-1]
    assert failed["state"] == "failed"
    assert failed["text"] == (
        "Keine Verbindung nach %d von %d Versuchen (could not reconnect after %d attempts) {kein Platzhalter}"
        % (ATTEMPTS, ATTEMPTS, ATTEMPTS)
    )
    assert failed["button"] == RETRY
    retry_after_restart(page, server, RETRY)


PAGE_TEXTS = {
    "banner_reconnecting": "Page: retrying {attempt}/{max}",
    "banner_failed": "Page: gone ({reason})",
    "banner_retry": "Page: again",
}


def static_page(page, server, transport, view_name="editor"):
    """The demo's index.html (a static page writing its own runtime config) with the
    banner's words and fast backoff in that config, mounting ``view_name``."""
    config = {
        "url": "",
        "prefix": "/djreconnect",
        "transport": transport,
        "backoff": {"min_ms": 100, "base_ms": 150, "max_ms": 300, "max_attempts": ATTEMPTS},
        "banner_delay_ms": 0,
        **PAGE_TEXTS,
    }

    def rewrite(route):
        response = route.fetch()
        html, count = re.subn(
            r'(<script type="application/json" id="djreconnect-config">).*?(</script>)',
            lambda match: match.group(1) + json.dumps(config) + match.group(2),
            response.text(),
            flags=re.S,
        )
        assert count == 1
        html = html.replace('dj-view="editor"', "dj-view=%s" % json.dumps(view_name), 1)
        route.fulfill(response=response, body=html)

    page.route(server.url + "/index.html", rewrite)
    page.goto(server.url + "/index.html")


def test_a_page_s_own_config_sets_its_banner_words(browser, server, guard, transport):
    context, page = new_page(browser, guard)
    try:
        static_page(page, server, transport)
        wait_connected(page)
        records = drop_until_failed(page, server)
        assert_announced(records)
        reconnecting = [r["text"] for r in records if r["state"] == "reconnecting"]
        assert reconnecting == ["Page: retrying %d/%d" % (n, ATTEMPTS) for n in range(1, ATTEMPTS + 1)]
        assert records[-1]["text"] == "Page: gone (could not reconnect after %d attempts)" % ATTEMPTS
        assert records[-1]["button"] == "Page: again"
        retry_after_restart(page, server, "Page: again")
    finally:
        context.close()


def test_braces_in_a_reason_show_as_sent(browser, server, guard, transport):
    context, page = new_page(browser, guard)
    try:
        # The server refuses the view by name and says so; the name is the page's text.
        static_page(page, server, transport, view_name="{reason}{attempt} {0} {{max}}")
        page.wait_for_function("window.djreconnect && window.djreconnect.state === 'failed'", timeout=60_000)
        banner = page.locator(".dj-reconnecting-banner")
        text = banner.evaluate("b => b.firstChild.data")
        assert text == "Page: gone (no view named '{reason}{attempt} {0} {{max}}')"
        assert banner.get_attribute("role") == "status"
    finally:
        context.close()
