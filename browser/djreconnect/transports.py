"""Transports: the only code that opens connections. Each reports to callbacks
tagged with its generation, and owns (and destroys) its JS proxies."""

from djreconnect import constants
from djreconnect.jsbridge import ProxyOwner, js


def websocket_url(base_url, prefix):
    """ws(s)://host/prefix/ws from the backend's http(s) base URL."""
    if base_url.startswith("https://"):
        scheme, rest = "wss://", base_url[len("https://"):]
    elif base_url.startswith("http://"):
        scheme, rest = "ws://", base_url[len("http://"):]
    else:
        raise ValueError("the backend URL must start with http:// or https://: %r" % (base_url,))
    return scheme + rest.rstrip("/") + prefix + constants.PATH_WEBSOCKET


class WebSocketTransport:
    """A browser WebSocket. ``on_open(gen)``, ``on_frame(gen, text)`` and
    ``on_close(gen, code, reason)`` are called at most until ``close()``."""

    def __init__(self, url, generation, on_open, on_frame, on_close):
        self.generation = generation
        self.owner = ProxyOwner()
        self.closed = False
        self.socket = js.WebSocket.new(url)
        self._listeners = [
            ("open", self.owner.proxy(lambda event: on_open(generation))),
            ("message", self.owner.proxy(lambda event: on_frame(generation, event.data))),
            ("close", self.owner.proxy(lambda event: self._closed(on_close, event.code, event.reason))),
        ]
        for name, listener in self._listeners:
            self.socket.addEventListener(name, listener)

    def _closed(self, on_close, code, reason):
        if self.closed:
            return
        self.close()
        on_close(self.generation, code, reason)

    def send(self, text):
        self.socket.send(text)

    def close(self):
        """Stop listening, close the socket, destroy the proxies. Idempotent."""
        if self.closed:
            return
        self.closed = True
        for name, listener in self._listeners:
            self.socket.removeEventListener(name, listener)
        self._listeners = []
        if self.socket.readyState < 2:  # CONNECTING or OPEN
            self.socket.close(constants.CLOSE_NORMAL)
        self.owner.destroy_all()
