"""djreconnect: the browser runtime of reconnection-resilient LiveView pages.

The package is pure Python with no dependencies. Its core (protocol, backoff,
connection state machine, patch application, recovery decisions) imports in
CPython and MicroPython alike; only ``djreconnect.browser`` touches ``js``.
"""

__version__ = "0.1.0"
