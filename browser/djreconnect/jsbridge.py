"""The one place that knows which interpreter runs the page (Pyodide or MicroPython):
proxies, nulls and conversions, through PyScript's ``pyscript.ffi`` where it serves.

Everything else in the browser adapter calls these helpers.
"""

import js  # noqa: F401  (re-exported: the adapter's only door to the page)
from pyscript.ffi import create_proxy, is_none, to_js


def is_null(value):
    """True for JS null and undefined as Python sees them (None, or Pyodide's jsnull)."""
    return is_none(value)


def to_js_object(value):
    """A Python dict (possibly nested) as a plain JS object."""
    return to_js(value)


def _release(made):
    """Let a proxy go. Pyodide frees it now; MicroPython frees what JS no longer
    references when JS collects it, so dropping our last reference is the release."""
    destroy = getattr(made, "destroy", None)
    if destroy is not None:
        destroy()


class ProxyOwner:
    """Owns JS callback proxies and releases them together.

    Every callback handed to JS is made here, so a teardown (or a reconnect that
    retires a transport) leaves nothing behind. ``live`` counts what is held.
    """

    created = 0  # over the page's lifetime, for leak checks
    destroyed = 0

    def __init__(self):
        self.proxies = []

    def proxy(self, function):
        made = create_proxy(function)
        self.proxies.append(made)
        ProxyOwner.created += 1
        return made

    def destroy_all(self):
        proxies, self.proxies = self.proxies, []
        for made in proxies:
            _release(made)
            ProxyOwner.destroyed += 1

    @classmethod
    def live(cls):
        return cls.created - cls.destroyed


_live_hook = []


def live_proxies_hook():
    """A JS function returning ``ProxyOwner.live()``, for leak checks. Made once per page
    and owned by no ProxyOwner (nor counted), so it outlives a runtime's teardown."""
    if not _live_hook:
        _live_hook.append(create_proxy(lambda *args: ProxyOwner.live()))
    return _live_hook[0]
