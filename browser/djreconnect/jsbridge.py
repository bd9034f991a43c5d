"""The one place that knows which interpreter runs the page: proxies, nulls, conversions.

Everything else in the browser adapter calls these helpers instead of importing
``pyodide`` itself.
"""

import js  # noqa: F401  (re-exported: the adapter's only door to the page)
from pyodide.ffi import JsProxy, create_proxy, jsnull, to_js


def is_null(value):
    """True for JS null and undefined as Python sees them."""
    return value is None or value is jsnull


def to_js_object(value):
    """A Python dict (possibly nested) as a plain JS object."""
    return to_js(value, dict_converter=js.Object.fromEntries)


def to_py(value):
    """A JS value as Python (objects to dicts, arrays to lists)."""
    if isinstance(value, JsProxy):
        return value.to_py()
    return value


class ProxyOwner:
    """Owns JS callback proxies and destroys them together.

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
            made.destroy()
            ProxyOwner.destroyed += 1

    @classmethod
    def live(cls):
        return cls.created - cls.destroyed
