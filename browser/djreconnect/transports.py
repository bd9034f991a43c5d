"""Transports: the only code that opens connections. Each reports to callbacks
tagged with its generation, and owns (and destroys) its JS proxies. ``Transports`` is
the factory the runtime asks for each attempt's transport; the WebSocket-to-SSE
fallback lives there."""

import json

from djreconnect import constants
from djreconnect.jsbridge import ProxyOwner, js, to_js_object


def websocket_url(base_url, prefix):
    """ws(s)://host/prefix/ws from the backend's http(s) base URL."""
    if base_url.startswith("https://"):
        scheme, rest = "wss://", base_url[len("https://") :]
    elif base_url.startswith("http://"):
        scheme, rest = "ws://", base_url[len("http://") :]
    else:
        raise ValueError("the backend URL must start with http:// or https://: %r" % (base_url,))
    return scheme + rest.rstrip("/") + prefix + constants.PATH_WEBSOCKET


class WebSocketTransport:
    """A browser WebSocket. ``on_open(gen)``, ``on_frame(gen, text)`` and
    ``on_close(gen, code, reason)`` are called at most until ``close()``. ``was_open``
    tells a socket that never opened (refused upgrade, server down) from a dropped one."""

    def __init__(self, url, generation, on_open, on_frame, on_close):
        self.generation = generation
        self.owner = ProxyOwner()
        self.closed = False
        self.was_open = False
        self.socket = js.WebSocket.new(url)
        self._listeners = [
            ("open", self.owner.proxy(lambda event: self._opened(on_open))),
            ("message", self.owner.proxy(lambda event: on_frame(generation, event.data))),
            ("close", self.owner.proxy(lambda event: self._closed(on_close, event.code, event.reason))),
        ]
        for name, listener in self._listeners:
            self.socket.addEventListener(name, listener)

    def _opened(self, on_open):
        self.was_open = True
        on_open(self.generation)

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


def backend_url(base_url, prefix, path):
    return base_url.rstrip("/") + prefix + path


class SSETransport:
    """An EventSource for server -> client and POSTs for client -> server.

    The runtime owns reconnection: on any stream error the EventSource is closed at
    once (its own retry loop never runs) and the close is reported. A stream is one
    connection (a *channel* on the server); what outlives it is the page's session, which
    the next transport resumes like any other. Frames are POSTed one batch at a time
    (one frame per line, at most ``SSE_MAX_FRAMES_PER_POST``), which keeps them in order.
    """

    def __init__(self, base_url, prefix, generation, on_open, on_frame, on_close):
        self.generation = generation
        self.on_open = on_open
        self.on_frame = on_frame
        self.on_close = on_close
        self.closed = False
        self.channel = None
        self.csrf = None
        self.outbox = []
        self.posting = False
        self.post_url = backend_url(base_url, prefix, constants.PATH_POST)
        url = backend_url(base_url, prefix, constants.PATH_SSE)
        self.owner = ProxyOwner()  # stream listeners
        self.post_owner = ProxyOwner()  # fetch callbacks: they may outlive the stream
        self.post_done = self.post_owner.proxy(self._posted)
        self.post_failed = self.post_owner.proxy(self._post_failed)
        self.source = js.EventSource.new(url)
        self._listeners = [
            (constants.SSE_EVENT_CHANNEL, self.owner.proxy(self._channel)),
            ("message", self.owner.proxy(self._message)),
            (constants.SSE_EVENT_CLOSE, self.owner.proxy(self._refused)),
            ("error", self.owner.proxy(lambda event: self._closed(constants.CLOSE_ABNORMAL, "stream lost"))),
        ]
        for name, listener in self._listeners:
            self.source.addEventListener(name, listener)

    def _channel(self, event):
        if self.closed:
            return
        grant = json.loads(event.data)
        self.channel = grant["channel"]
        self.csrf = grant["csrf"]
        self.on_open(self.generation)

    def _message(self, event):
        if self.closed:
            return
        self.on_frame(self.generation, event.data)

    def _refused(self, event):
        refusal = json.loads(event.data)
        self._closed(refusal["code"], refusal["reason"])

    def _closed(self, code, reason):
        if self.closed:
            return
        self.close()
        self.on_close(self.generation, code, reason)

    def send(self, text):
        self.outbox.append(text)
        if not self.posting:
            self._post()

    def _post(self):
        limit = constants.SSE_MAX_FRAMES_PER_POST
        body = "\n".join(self.outbox[:limit])
        self.outbox = self.outbox[limit:]
        self.posting = True
        headers = {
            "Content-Type": "text/plain;charset=UTF-8",
            constants.SSE_HEADER_CHANNEL: self.channel,
            constants.SSE_HEADER_CSRF: self.csrf,
        }
        init = to_js_object({"method": "POST", "headers": headers, "body": body, "credentials": "omit"})
        js.fetch(self.post_url, init).then(self.post_done, self.post_failed)

    def _post_settled(self):
        """A fetch finished; True if the transport is still in use."""
        self.posting = False
        if self.closed:
            self.post_owner.destroy_all()  # no fetch is in flight: nothing can call them
            return False
        return True

    def _post_failed(self, error):
        if self._post_settled():
            self._closed(constants.CLOSE_ABNORMAL, "POST failed")

    def _posted(self, response):
        if not self._post_settled():
            return
        status = response.status
        if 200 <= status < 300:
            if self.outbox:
                self._post()
        elif status == 403:
            self._closed(constants.CLOSE_BAD_TOKEN, "the server refused this page's frames")
        else:
            self._closed(constants.CLOSE_ABNORMAL, "POST answered %d" % status)

    def close(self):
        """Stop listening and close the stream; idempotent. Fetch callbacks are destroyed
        once no fetch is in flight."""
        if self.closed:
            return
        self.closed = True
        for name, listener in self._listeners:
            self.source.removeEventListener(name, listener)
        self._listeners = []
        self.source.close()
        self.owner.destroy_all()
        if not self.posting:
            self.post_owner.destroy_all()


class Transports:
    """The transport factory: the runtime asks it for each attempt's transport.

    ``name`` is the transport in use, ``ws`` or ``sse``. With ``fallback``, a WebSocket that closes without ever
    having opened on this page (say, a proxy refuses upgrades) is replaced by SSE within
    the same attempt, and every later attempt uses SSE; one that opened once never falls
    back. Callbacks: ``on_open(gen)``, ``on_frame(gen, text)``, ``on_close(gen, code,
    reason)``, as each transport's.
    """

    def __init__(self, backend, prefix, name, fallback, on_open, on_frame, on_close):
        if name not in constants.TRANSPORTS:
            raise ValueError("djreconnect: unknown transport %r" % (name,))
        self.backend = backend
        self.prefix = prefix
        self.url = websocket_url(backend, prefix)
        self.name = name
        self.fallback = fallback
        self.websocket_worked = False
        self.on_open = on_open
        self.on_frame = on_frame
        self.on_close = on_close

    def open(self, generation):
        """A new transport for the attempt ``generation``, opening."""
        if self.name == constants.TRANSPORT_SSE:
            return self._sse(generation, self.on_open)
        if self.fallback and not self.websocket_worked:
            return FallbackTransport(self, generation)
        return WebSocketTransport(self.url, generation, self._websocket_opened, self.on_frame, self.on_close)

    def _sse(self, generation, on_open):
        return SSETransport(self.backend, self.prefix, generation, on_open, self.on_frame, self.on_close)

    def _websocket_opened(self, generation):
        self.websocket_worked = True
        self.on_open(generation)

    def _fallback_opened(self, generation):
        self.name = constants.TRANSPORT_SSE  # for the rest of the page's life
        self.on_open(generation)


class FallbackTransport:
    """One attempt's WebSocket, replaced by SSE (same generation) if it closes without
    ever opening and the factory allows the fallback; ``send`` and ``close`` go to
    whichever is current."""

    def __init__(self, transports, generation):
        self.transports = transports
        self.generation = generation
        self.current = WebSocketTransport(
            transports.url, generation, transports._websocket_opened, transports.on_frame, self._websocket_closed
        )

    def _websocket_closed(self, generation, code, reason):
        transports = self.transports
        if transports.fallback and not transports.websocket_worked and not self.current.was_open:
            # The socket never opened: try SSE within the same attempt.
            self.current = transports._sse(generation, transports._fallback_opened)
            return
        transports.on_close(generation, code, reason)

    def send(self, text):
        self.current.send(text)

    def close(self):
        self.current.close()
