"""One live connection's views: decode frames, mount, dispatch events, answer with patches.

Transport-independent: the WebSocket and SSE endpoints feed frames in and send
back what ``receive`` returns.
"""

import logging
import time

from djreconnect import constants, protocol

from djreconnect_server.diff import diff, parse_fragment, parse_render
from djreconnect_server.views import HandlerError

log = logging.getLogger("djreconnect")


class ViewSession:
    """A mounted view and its last render (what the page shows, as far as the server knows).

    The last render is kept as HTML text, not as a parse tree: a tree costs about a
    hundred times the memory, and parsing the text again when the next event comes is
    cheap (lexbor parses the demo's page in a few hundredths of a millisecond).
    """

    def __init__(self, view, templates):
        self.view = view
        self.templates = templates
        self.last = None  # the HTML of the last render

    def patch_from(self, page_html):
        """Ops turning what the page shows into the current render."""
        html = self.templates.render(self.view)
        ops = diff(parse_fragment(page_html), parse_render(html))
        self.last = html
        return ops

    def rerender(self):
        """Ops turning the last render into the current one."""
        html = self.templates.render(self.view)
        ops = [] if html == self.last else diff(parse_render(self.last), parse_render(html))
        self.last = html
        return ops


class RateLimiter:
    """A token bucket: ``rate`` frames a second on average, ``burst`` at once."""

    def __init__(self, rate, burst, clock=time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.updated = clock()

    def allow(self):
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class LiveConnection:
    """The server side of one client connection.

    After ``handle`` or ``receive``, ``close_code`` is set (with ``close_reason``) when
    the transport must close the connection: the application refused it (a view that
    cannot be mounted, a flood). The frames returned say why first.
    """

    def __init__(self, registry, templates, signer, settings, request):
        self.registry = registry
        self.templates = templates
        self.signer = signer
        self.settings = settings
        self.request = request
        self.sessions = {}
        self.limiter = RateLimiter(settings.max_frames_per_second, settings.max_frame_burst)
        self.close_code = None
        self.close_reason = ""

    def _refuse(self, code, reason):
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason

    def _error(self, ref, view, code, message):
        return protocol.encode(protocol.Error(ref=ref, view=view, code=code, message=message))

    async def handle(self, text):
        """``receive``, except that nothing raises: a failure is logged and answered."""
        try:
            return await self.receive(text)
        except Exception:
            log.exception("a frame could not be handled")
            error = protocol.Error(code="internal_error", message="the server could not handle that frame")
            return [protocol.encode(error)]

    async def handle_binary(self):
        """A binary frame: refused (frames are JSON text), and counted like any other."""
        refused = self._limit()
        if refused is not None:
            return refused
        return [self._error(None, None, "bad_frame", "frames must be text, not binary")]

    def _limit(self):
        """Frames answering a closed or flooding connection, or None to go on."""
        if self.close_code is not None:
            return []
        if not self.limiter.allow():
            reason = "more than %d frames a second" % self.settings.max_frames_per_second
            self._refuse(constants.CLOSE_RATE_LIMITED, reason)
            return [self._error(None, None, "rate_limited", reason)]
        return None

    async def receive(self, text):
        """Handle one inbound frame; returns the frames to send back (JSON text)."""
        refused = self._limit()
        if refused is not None:
            return refused
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.settings.max_frame_bytes:
            return [
                self._error(
                    None,
                    None,
                    "too_big",
                    "frame of %d bytes exceeds the limit of %d" % (size, self.settings.max_frame_bytes),
                )
            ]
        try:
            message = protocol.decode_client(text)
        except protocol.ProtocolError as error:
            return [self._error(None, None, error.code, error.message)]
        if isinstance(message, protocol.Ping):
            return [protocol.encode(protocol.Pong(ref=message.ref))]
        if isinstance(message, protocol.Join):
            return [await self._join(message)]
        if isinstance(message, protocol.Batch):
            return await self._batch(message)
        if isinstance(message, protocol.Leave):
            self.sessions.pop(message.view, None)
            return []
        return await self._event(message)

    async def _join(self, join):
        refused = self._mount_refusal(join)
        if refused is not None:
            code, close_code, message = refused
            self._refuse(close_code, message)
            return self._error(join.ref, join.view, code, message)
        view_cls, public = self.registry[join.name]
        params = self.signer.verify(join.token, join.name) if join.token else {}
        view = view_cls()
        try:
            view.mount(self.request, **params)
            session = ViewSession(view, self.templates)
            ops = session.patch_from(join.html)
        except Exception:
            log.exception("mounting %s failed", join.name)
            return self._error(
                join.ref, join.view, protocol.MOUNT_FAILED, "mounting %r failed on the server" % (join.name,)
            )
        self.sessions[join.view] = session
        return protocol.encode(protocol.Rendered(ref=join.ref, view=join.view, ops=ops))

    def _mount_refusal(self, join):
        """(error code, close code, message) when ``join`` may not mount, else None."""
        entry = self.registry.get(join.name)
        if entry is None:
            return "unknown_view", constants.CLOSE_UNKNOWN_VIEW, "no view named %r" % (join.name,)
        if join.token:
            if self.signer.verify(join.token, join.name) is None:
                return "bad_token", constants.CLOSE_BAD_TOKEN, "the mount grant for %r is not valid" % (join.name,)
        elif not entry[1]:
            return "bad_token", constants.CLOSE_BAD_TOKEN, "view %r needs a mount grant from its page" % (join.name,)
        if join.view not in self.sessions and len(self.sessions) >= self.settings.max_views:
            return (
                "too_many_views",
                constants.CLOSE_BAD_FRAME,
                "more than %d views on one connection" % self.settings.max_views,
            )
        return None

    async def _event(self, event):
        session = self.sessions.get(event.view)
        if session is None:
            return [self._error(event.ref, event.view, "not_mounted", "view %r is not mounted" % (event.view,))]
        try:
            await session.view.handle_event(event.handler, event.params)
        except HandlerError as error:
            refused = self._error(event.ref, event.view, error.code, error.message)
            return [refused] + self._update(session, event.view)
        except Exception:
            log.exception("handler %s of %s failed", event.handler, type(session.view).__name__)
            failed = self._error(event.ref, event.view, "handler_failed", "%s failed on the server" % (event.handler,))
            return [failed] + self._update(session, event.view)
        try:
            ops = session.rerender()
        except Exception:
            log.exception("rendering %s failed", type(session.view).__name__)
            return [self._error(event.ref, event.view, "render_failed", "the view could not be rendered")]
        return [protocol.encode(protocol.Reply(ref=event.ref, view=event.view, ops=ops))]

    async def _batch(self, batch):
        """Every event of ``batch`` in order, then one render: one Reply for the batch,
        after an Error (with the batch's ref) for each event refused."""
        session = self.sessions.get(batch.view)
        if session is None:
            return [self._error(batch.ref, batch.view, "not_mounted", "view %r is not mounted" % (batch.view,))]
        frames = []
        for handler, params in batch.events:
            try:
                await session.view.handle_event(handler, params)
            except HandlerError as error:
                frames.append(self._error(batch.ref, batch.view, error.code, error.message))
            except Exception:
                log.exception("handler %s of %s failed", handler, type(session.view).__name__)
                message = "%s failed on the server" % (handler,)
                frames.append(self._error(batch.ref, batch.view, "handler_failed", message))
        try:
            ops = session.rerender()
        except Exception:
            log.exception("rendering %s failed", type(session.view).__name__)
            return frames + [self._error(batch.ref, batch.view, "render_failed", "the view could not be rendered")]
        return frames + [protocol.encode(protocol.Reply(ref=batch.ref, view=batch.view, ops=ops))]

    def _update(self, session, view_id):
        """After a refused or failed event: the handler may have changed state before it
        stopped, and the page must still show the state the server has."""
        try:
            ops = session.rerender()
        except Exception:
            log.exception("rendering %s failed", type(session.view).__name__)
            return []
        if not ops:
            return []
        return [protocol.encode(protocol.Reply(ref=None, view=view_id, ops=ops))]
