"""Protocol clients for suites and benchmarks that attack a real server process: a
WebSocket client, an SSE client (stream read by a thread, frames POSTed), a bystander
that clicks the demo's counter and times each reply, and the server's memory (RSS)."""

import json
import queue
import socket
import statistics
import threading
import time

import httpx
from djreconnect import constants, protocol
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

TIMEOUT = 10
PREFIX = constants.DEFAULT_PREFIX


class Closed:
    """What ``recv`` returns once the server closed the connection (code None: the
    stream just ended)."""

    def __init__(self, code, reason):
        self.code = code
        self.reason = reason

    def __repr__(self):
        return "Closed(%r, %r)" % (self.code, self.reason)


class WSClient:
    """The live WebSocket, with the sync ``websockets`` client."""

    transport = constants.TRANSPORT_WEBSOCKET

    def __init__(self, url, **options):
        self.ref = 0
        settings = dict(
            origin=url,
            proxy=None,
            compression=None,  # a big frame is really that big on the wire
            max_size=None,
            max_queue=None,
            open_timeout=TIMEOUT,
            close_timeout=2,
        )
        settings.update(options)
        self.ws = connect(url.replace("http://", "ws://") + PREFIX + constants.PATH_WEBSOCKET, **settings)

    def next_ref(self):
        self.ref += 1
        return self.ref

    def send(self, *messages):
        for message in messages:
            self.ws.send(message if isinstance(message, str) else protocol.encode(message))

    def recv(self, timeout=TIMEOUT):
        try:
            raw = self.ws.recv(timeout=timeout)
        except ConnectionClosed:
            return Closed(self.ws.close_code, self.ws.close_reason)
        return protocol.decode_server(raw)

    def close(self):
        self.ws.close()


_STREAM_END = object()


def parse_sse(lines, put):
    """Feed SSE ``lines`` (text, no line ends) to ``put`` as dicts of event, id, data."""
    current = {}
    for line in lines:
        if line.startswith(":"):
            continue  # keep-alive comment
        if not line:
            if current:
                put(current)
                current = {}
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        current[field] = current.get(field, "") + value if field == "data" else value


def sse_message(event):
    """An SSE event as a server message, or Closed for the stream's close event."""
    if event.get("event") == constants.SSE_EVENT_CLOSE:
        data = json.loads(event["data"])
        return Closed(data["code"], data["reason"])
    return protocol.decode_server(event["data"])


class SSEClient:
    """The SSE transport: an event stream read by a thread, frames POSTed one per line."""

    transport = constants.TRANSPORT_SSE

    def __init__(self, url):
        self.ref = 0
        self.url = url + PREFIX
        self.origin = url
        # The stream and the POSTs on separate clients: never one pool shared by threads.
        self.reader = httpx.Client(timeout=httpx.Timeout(TIMEOUT, read=None), trust_env=False)
        self.http = httpx.Client(timeout=60, trust_env=False)
        self.events = queue.Queue()
        self._context = self.reader.stream("GET", self.url + constants.PATH_SSE, headers={"Origin": self.origin})
        self.stream = self._context.__enter__()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        first = self.events.get(timeout=TIMEOUT)
        assert first is not _STREAM_END and first.get("event") == constants.SSE_EVENT_CHANNEL, first
        self.grant = json.loads(first["data"])

    def _read(self):
        try:
            parse_sse(self.stream.iter_lines(), self.events.put)
        except Exception:  # closed under us by close()
            pass
        finally:
            self.events.put(_STREAM_END)

    def next_ref(self):
        self.ref += 1
        return self.ref

    def post(self, *messages):
        """POST ``messages`` (one a line); the HTTP response."""
        body = "\n".join(m if isinstance(m, str) else protocol.encode(m) for m in messages)
        headers = {
            "Origin": self.origin,
            constants.SSE_HEADER_CHANNEL: self.grant["channel"],
            constants.SSE_HEADER_CSRF: self.grant["csrf"],
        }
        return self.http.post(self.url + constants.PATH_POST, content=body.encode("utf-8"), headers=headers)

    def send(self, *messages):
        response = self.post(*messages)
        assert response.status_code == 204, (response.status_code, response.text)

    def recv(self, timeout=TIMEOUT):
        event = self.events.get(timeout=timeout)
        if event is _STREAM_END:
            self.events.put(_STREAM_END)
            return Closed(None, "the stream ended")
        return sse_message(event)

    def close(self):
        # Closing the response does not wake a thread blocked reading it; a shutdown does.
        network = self.stream.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(timeout=5)
        try:
            self._context.__exit__(None, None, None)
        finally:
            self.reader.close()
            self.http.close()


CLIENTS = {constants.TRANSPORT_WEBSOCKET: WSClient, constants.TRANSPORT_SSE: SSEClient}


def small_window_socket(url, receive_buffer=4096):
    """A TCP socket to the server at ``url`` whose receive buffer is tiny and fixed (no
    autotuning): a peer that stops reading really stops the server's writes."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    sock.connect((host, int(port)))
    return sock


class UnreadSSE:
    """An SSE page that opens its stream, reads the channel grant, and reads nothing more
    until ``read_all``; its frames are POSTed like a page's."""

    transport = constants.TRANSPORT_SSE

    def __init__(self, url):
        self.ref = 0
        self.url = url + PREFIX
        self.origin = url
        self.sock = small_window_socket(url)
        request = "GET %s HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nAccept: text/event-stream\r\n\r\n" % (
            PREFIX + constants.PATH_SSE,
            url.split("//", 1)[1],
            url,
        )
        self.sock.sendall(request.encode("ascii"))
        self.sock.settimeout(TIMEOUT)
        self.received = b""
        while b"\r\n\r\n" not in self.received.partition(b"event: " + constants.SSE_EVENT_CHANNEL.encode())[2]:
            chunk = self.sock.recv(4096)
            assert chunk, self.received
            self.received += chunk
        grant = self.received.partition(b"event: " + constants.SSE_EVENT_CHANNEL.encode())[2]
        self.grant = json.loads(grant.partition(b"data: ")[2].partition(b"\r\n")[0])
        self.http = httpx.Client(timeout=60, trust_env=False)

    next_ref = SSEClient.next_ref
    post = SSEClient.post

    def read_all(self, timeout=TIMEOUT):
        """Read the stream to its end (or until it is silent for ``timeout``); the
        messages after the channel grant, a Closed last when the server closed it."""
        self.sock.settimeout(timeout)
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                break
            if not chunk:
                break
            self.received += chunk
        events = []
        # The body is chunked: the SSE text is what remains once chunk sizes are dropped;
        # an SSE line never looks like a bare hex number followed by a line end.
        body = self.received.partition(b"\r\n\r\n")[2].decode("utf-8")
        lines = [line for line in body.split("\r\n") if not _is_chunk_size(line)]
        parse_sse(lines, events.append)
        return [sse_message(event) for event in events if event.get("event") != constants.SSE_EVENT_CHANNEL]

    def close(self):
        self.sock.close()
        self.http.close()


def _is_chunk_size(line):
    return bool(line) and len(line) <= 8 and all(c in "0123456789abcdefABCDEF" for c in line)


def open_client(url, transport, **options):
    return CLIENTS[transport](url, **options)


def answer_to(client, ref, timeout=TIMEOUT):
    """The first message answering ``ref`` (other frames, pushes, are skipped); Closed if
    the connection ends first."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no answer to ref %d within %s s" % (ref, timeout))
        message = client.recv(timeout=left)
        if isinstance(message, Closed) or getattr(message, "ref", None) == ref:
            return message


def mount(client, name="editor", view="v", html=""):
    """Join ``name`` as ``view``; the Rendered (or whatever answered)."""
    ref = client.next_ref()
    client.send(protocol.Join(ref=ref, view=view, name=name, html=html))
    return answer_to(client, ref)


# --- figures -----------------------------------------------------------------------


def percentile(values, fraction):
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, int(round(fraction * len(ordered) + 0.5)) - 1))
    return ordered[index]


def summary_ms(seconds):
    """(p50, p99, max) of round trips in seconds, in milliseconds."""
    return tuple(1000 * value for value in (percentile(seconds, 0.5), percentile(seconds, 0.99), max(seconds)))


class Bystander:
    """Another page on the same server, clicking the demo's counter (``increment``) every
    ``pause_s`` and timing each reply, from ``start()`` to ``stop()``."""

    def __init__(self, url, transport=constants.TRANSPORT_WEBSOCKET, pause_s=0.02):
        self.client = open_client(url, transport)
        self.pause_s = pause_s
        rendered = mount(self.client)
        assert isinstance(rendered, protocol.Rendered), rendered
        self.round_trips = []
        self.failures = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            ref = self.client.next_ref()
            started = time.perf_counter()
            try:
                self.client.send(protocol.Event(ref=ref, view="v", handler="increment", params={"amount": "1"}))
                reply = answer_to(self.client, ref, timeout=120)
            except Exception as error:  # recorded, and the test says so
                self.failures.append(repr(error))
                return
            if not isinstance(reply, protocol.Reply):
                self.failures.append(repr(reply))
                return
            self.round_trips.append(time.perf_counter() - started)
            self._stop.wait(self.pause_s)

    def stop(self):
        """Stop clicking; (p50, p99, max) in ms."""
        self._stop.set()
        self._thread.join(timeout=130)
        self.client.close()
        assert not self.failures, self.failures
        assert self.round_trips, "the bystander got no reply at all"
        return summary_ms(self.round_trips)


def rss_bytes(pid):
    """The resident memory of process ``pid`` (VmRSS)."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for process %d" % pid)


class RSSPeak:
    """The highest RSS of a process, sampled every ``every_s`` from ``start()`` to ``stop()``."""

    def __init__(self, pid, every_s=0.02):
        self.pid = pid
        self.every_s = every_s
        self.before = rss_bytes(pid)
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except (OSError, RuntimeError):
                return
            self._stop.wait(self.every_s)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, rss_bytes(self.pid))
        return self.peak - self.before


def mib(size):
    return size / (1 << 20)


def median(values):
    return statistics.median(values) if values else float("nan")
