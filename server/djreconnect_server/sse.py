"""The Server-Sent Events transport: an event stream for server -> client, HTTP POST for
client -> server, on the same LiveConnection as the WebSocket.

A stream belongs to a session with an unguessable id and a CSRF token, both sent as
the stream's first event. Frames carry increasing ids; the session keeps the recent
ones, so a stream reopened with ``Last-Event-ID`` (header or ``last_event_id``
parameter) and the session's token (``key``) within the session's lifetime gets what
it missed, once, and a new token. POSTs must name the session and carry its token.
"""

import asyncio
import collections
import hmac
import json
import secrets
import time

from djreconnect import constants
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

# Event names on the stream (plain frames use the default "message" event).
EVENT_SESSION = "session"
EVENT_CLOSE = "close"
HEADER_SESSION = "X-DJ-Session"
HEADER_CSRF = "X-DJ-CSRF"
# How long a session outlives its stream, waiting for the client to resume it.
SESSION_TTL_S = 60.0
# How many delivered frames a session keeps for resuming streams.
REPLAY_LIMIT = 256
# Frames waiting for a stream past which the session is closed (4029).
MAX_UNDELIVERED = 5000
KEEPALIVE_S = 15


class SSESession:
    """One client's live connection over SSE: its numbered frames, those not yet
    delivered and the last ``REPLAY_LIMIT`` delivered ones (for resuming)."""

    def __init__(self, live):
        self.id = secrets.token_urlsafe(24)
        self.csrf = secrets.token_urlsafe(24)
        self.live = live
        self.next_id = 1
        self.sent = collections.deque()  # (id, frame), oldest first
        self.delivered = 0  # the highest id a stream has yielded
        self.wakeup = asyncio.Event()
        self.streams = 0  # open streams (0 or 1)
        self.stream_token = 0  # which stream is current; older ones end
        self.idle_since = time.monotonic()
        self.lock = asyncio.Lock()  # frames are handled one at a time, in order
        self.refusal = None  # (code, reason) once the application closes the session

    def push(self, frame):
        self.sent.append((self.next_id, frame))
        self.next_id += 1
        self._prune()
        self.wakeup.set()

    def mark_delivered(self, number):
        self.delivered = max(self.delivered, number)
        self._prune()

    def _prune(self):
        # Frames not yet delivered are never dropped (the rate limit bounds them);
        # delivered ones are kept for a resume, up to REPLAY_LIMIT.
        sent = self.sent
        while len(sent) > REPLAY_LIMIT and sent[0][0] <= self.delivered:
            sent.popleft()

    def undelivered(self):
        return self.next_id - 1 - self.delivered

    def after(self, last_id):
        """Frames sent after ``last_id``, or None when some of them are gone."""
        oldest_kept = self.sent[0][0] if self.sent else self.next_id
        if last_id + 1 < oldest_kept or last_id >= self.next_id:
            return None
        return [(number, frame) for number, frame in self.sent if number > last_id]

    def check(self, csrf):
        """Whether ``csrf`` is this session's token (constant time; any text is safe)."""
        if not isinstance(csrf, str):
            return False
        return hmac.compare_digest(csrf.encode("utf-8", "surrogatepass"), self.csrf.encode("utf-8"))


class SSEHub:
    """All SSE sessions of a backend."""

    def __init__(self, new_live):
        self.new_live = new_live  # request -> LiveConnection
        self.sessions = {}

    def _expire(self):
        now = time.monotonic()
        for session_id, session in list(self.sessions.items()):
            if session.streams == 0 and now - session.idle_since > SESSION_TTL_S:
                del self.sessions[session_id]

    def stream(self, request, session_id, key, last_event_id):
        """The EventSourceResponse for a new stream.

        It resumes session ``session_id`` after event ``last_event_id`` when the session is
        alive, ``key`` is its current CSRF token, and it still has what followed. A resume
        rotates the token (a resume URL works once); anything else starts a new session.
        """
        self._expire()
        session = self.sessions.get(session_id) if session_id else None
        if session is not None and not session.check(key):
            session = None
        if session is not None:
            if last_event_id is None:
                last_event_id = session.next_id - 1
            if session.after(last_event_id) is None:  # too far behind to resume
                session = None
        if session is None:
            session = SSESession(self.new_live(request))
            self.sessions[session.id] = session
            last_event_id = 0
        else:
            session.csrf = secrets.token_urlsafe(24)
        session.stream_token += 1
        session.wakeup.set()  # an older stream of this session sees it is replaced, and ends
        return EventSourceResponse(
            self._events(session, session.stream_token, last_event_id),
            ping=KEEPALIVE_S,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _events(self, session, token, last):
        session.streams += 1
        try:
            yield ServerSentEvent(json.dumps({"session": session.id, "csrf": session.csrf}), event=EVENT_SESSION)
            while session.stream_token == token:
                pending = session.after(last)
                if pending is None:
                    return  # cannot happen to a live stream; end it rather than skip frames
                if not pending:
                    if session.refusal is not None:
                        code, reason = session.refusal
                        yield ServerSentEvent(json.dumps({"code": code, "reason": reason}), event=EVENT_CLOSE)
                        return
                    session.wakeup.clear()
                    await session.wakeup.wait()
                    continue
                for number, frame in pending:
                    yield ServerSentEvent(frame, id=str(number))
                    last = number
                    session.mark_delivered(number)
        finally:
            session.streams -= 1
            session.idle_since = time.monotonic()

    def find(self, session_id, csrf):
        """The session a POST may act on, or (status, reason)."""
        session = self.sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None:
            return None, (404, "unknown or expired session")
        if not session.check(csrf):
            return None, (403, "missing or wrong CSRF token")
        return session, None

    async def post(self, session, body):
        """Handle the frames of one POST (one per line), in order; replies go to the stream."""
        async with session.lock:
            # Only "\n" separates frames: other line breaks may stand unescaped in JSON strings.
            for line in body.split("\n"):
                if session.refusal is not None:
                    return
                if line.strip():
                    for frame in await session.live.handle(line):
                        session.push(frame)
                    if session.undelivered() > MAX_UNDELIVERED:
                        session.live.close_code = constants.CLOSE_RATE_LIMITED
                        session.live.close_reason = "too many frames waiting for the stream"
                    if session.live.close_code is not None:
                        # Said on the stream once what precedes it is sent; then forgotten.
                        session.refusal = (session.live.close_code, session.live.close_reason)
                        self.sessions.pop(session.id, None)
                        session.wakeup.set()


def refused_stream(origin, code, reason):
    """A one-event stream that tells the runtime it was refused (and why), then ends.
    Readable by the refused page, so it can say why, and carrying nothing else."""

    async def events():
        yield ServerSentEvent(json.dumps({"code": code, "reason": reason}), event=EVENT_CLOSE)

    return EventSourceResponse(events(), headers={"Access-Control-Allow-Origin": origin or "*"})
