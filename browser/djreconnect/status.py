"""The connection's status on the page: <body> classes, the attempt attribute and CSS
property, and the banner (its default look and its words)."""

from djreconnect import constants
from djreconnect.banner import BannerTexts
from djreconnect.connection import CONNECTED, FAILED, RECONNECTING
from djreconnect.jsbridge import is_null

BANNER_CSS = """
.%(banner)s {
  position: fixed; top: 0; left: 0; right: 0; z-index: 2147483647;
  padding: 0.5em 1em; text-align: center;
  font: 14px/1.4 system-ui, sans-serif;
  background: #f59e0b; color: #1f2937; box-shadow: 0 1px 4px rgba(0, 0, 0, 0.25);
}
.%(banner)s button { margin-left: 1em; font: inherit; cursor: pointer; }
""" % {"banner": constants.CLASS_BANNER}


def install_banner_css(document):
    """The banner's default look, first in <head> so any page stylesheet overrides it."""
    style = document.createElement("style")
    style.textContent = BANNER_CSS
    head = document.head
    head.insertBefore(style, head.firstChild)


def show_status(document, state, attempt, max_attempts, reason, texts=None):
    """Body classes, banner, attempt attribute and CSS property for a connection state.

    ``texts`` (a ``djreconnect.banner.BannerTexts``) gives the banner's words; in the
    failed state ``attempt`` and ``max_attempts`` are the attempts made and allowed."""
    if texts is None:
        texts = BannerTexts()
    body = document.body
    classes = body.classList
    connected = state == CONNECTED
    classes.toggle(constants.CLASS_CONNECTED, connected)
    classes.toggle(constants.CLASS_DISCONNECTED, not connected)
    classes.toggle(constants.CLASS_RECONNECT_FAILED, state == FAILED)
    banner = document.getElementById(constants.BANNER_ID)
    if state == RECONNECTING:
        body.setAttribute(constants.ATTR_RECONNECT_ATTEMPT, str(attempt))
        body.style.setProperty(constants.CSS_RECONNECT_ATTEMPT, str(attempt))
        banner = _banner(document, banner)
        banner.textContent = texts.reconnecting(attempt, max_attempts)
        banner.setAttribute("data-state", state)
        return
    body.removeAttribute(constants.ATTR_RECONNECT_ATTEMPT)
    body.style.removeProperty(constants.CSS_RECONNECT_ATTEMPT)
    if state == FAILED:
        banner = _banner(document, banner)
        banner.textContent = texts.failed(reason, attempt, max_attempts)
        banner.setAttribute("data-state", state)
        button = document.createElement("button")
        button.type = "button"
        button.className = constants.CLASS_BANNER_RETRY
        button.textContent = texts.retry(reason, attempt, max_attempts)
        banner.appendChild(button)
        return
    if not is_null(banner):
        banner.remove()


def _banner(document, banner):
    if not is_null(banner):
        return banner
    banner = document.createElement("div")
    banner.id = constants.BANNER_ID
    banner.className = constants.CLASS_BANNER
    banner.setAttribute("role", "status")
    banner.setAttribute("aria-live", "polite")
    # Outside <body>, so it is never part of a view that happens to be the body.
    document.documentElement.appendChild(banner)
    return banner
