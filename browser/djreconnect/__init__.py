"""djreconnect: the browser runtime of reconnection-resilient LiveView pages.

The package is pure Python with no dependencies. Its core (protocol, backoff,
connection state machine, patch application, recovery decisions) imports in
CPython and MicroPython alike; only ``djreconnect.browser`` and its page helpers
touch ``js`` (through ``djreconnect.jsbridge``).
"""

__version__ = "0.1.0"
