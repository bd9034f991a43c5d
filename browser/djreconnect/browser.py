"""The browser adapter: turns page and transport events into core inputs, and core
effects into DOM and transport calls. With its helpers (``transports``, ``pagedom``,
``fields``, ``snapshot``, ``params``, ``events``, ``status``, ``boot``, ``jsbridge``)
the only code that runs in a page only.
"""

import json

from djreconnect import __version__, boot, constants, effects
from djreconnect.banner import BannerTexts
from djreconnect.client import KIND_CHANGE, KIND_CLICK, KIND_INPUT, KIND_SUBMIT, MOUNT_FIRST, Client
from djreconnect.connection import FAILED, RECONNECTING, TIMERS, Settings
from djreconnect.events import disable, disable_targets, enable, params_for
from djreconnect.fields import (
    event_source,
    mark_event_source,
    remember_server_values,
    reset_unrecovered,
    restore_user_input,
    save_user_input,
    show_submitted,
    submitted_fields,
)
from djreconnect.jsbridge import ProxyOwner, is_null, js, live_proxies_hook, to_js_object
from djreconnect.pagedom import PageDom, root_html, view_root
from djreconnect.params import form_data_params, value_params
from djreconnect.patch import PatchError, apply_ops
from djreconnect.snapshot import recovery_snapshot
from djreconnect.status import install_banner_css, show_status
from djreconnect.transports import Transports

# Delegated DOM events: DOM event name -> (attribute that names the handler, kind).
DELEGATED = (
    ("click", constants.ATTR_CLICK, KIND_CLICK),
    ("submit", constants.ATTR_SUBMIT, KIND_SUBMIT),
    ("change", constants.ATTR_CHANGE, KIND_CHANGE),
    ("input", constants.ATTR_INPUT, KIND_INPUT),
)
PAGE_EVENTS = (("online", "wake"), ("offline", "went_offline"))
# The functions window.djreconnect offers while the runtime runs.
API_FUNCTIONS = ("connect", "disconnect", "retry", "stop")


def read_config(document):
    """The runtime settings the include wrote into the page, as a dict."""
    element = document.getElementById(constants.CONFIG_ELEMENT_ID)
    if is_null(element):
        raise RuntimeError("djreconnect: no #%s element on the page" % constants.CONFIG_ELEMENT_ID)
    return json.loads(element.textContent)


def settings_from_config(config):
    return Settings.from_dict(config)


def banner_from_config(config):
    """The banner's words the config sets (``banner_reconnecting``, ``banner_failed``,
    ``banner_retry``), the defaults for those it does not; ValueError for a bad one."""
    return BannerTexts.from_config(config)


class Runtime:
    """One page's runtime. ``start()`` binds it; ``stop()`` unbinds everything."""

    def __init__(self, window, config):
        self.window = window
        self.document = window.document
        self.config = config
        # No URL configured: the backend is where the page (or its <base href>) points.
        self.backend = config.get("url") or js.URL.new(self.document.baseURI).origin
        # A WebSocket that never opens on this page (say, a proxy refuses upgrades)
        # falls back to SSE, for the rest of the page's life.
        self.transports = Transports(
            self.backend,
            config.get("prefix", constants.DEFAULT_PREFIX),
            config.get("transport", constants.TRANSPORT_WEBSOCKET),
            config.get("fallback", True),
            self._opened,
            self._frame,
            self._closed,
        )
        self.leaving = False  # the page is being navigated away from: show no drop
        settings = settings_from_config(config)
        self.client = Client(settings, random=js.Math.random)
        self.banner = banner_from_config(config)
        self.max_attempts = settings.backoff.max_attempts
        self.attempts_made = 0  # the last reconnection attempt shown, for the failed banner
        self.owner = ProxyOwner()  # listeners and timers of the page's lifetime
        self.listeners = []  # (target, event name, proxy)
        self.transport = None
        self.timer_ids = {}
        self.timer_callbacks = {}
        self.view_elements = {}
        self.disabled = {}  # (view id, ref) -> elements waiting for their reply
        self.sources = 0  # the numbers given to fields that send input and change events
        # (view id, ref) -> a submitted form's fields as sent, until the reply (or the event
        # is abandoned): as many as events in flight or queued, which the client bounds.
        self.submitted = {}
        self.api = None
        self.stopped = False

    # --- binding ----------------------------------------------------------------

    def start(self):
        install_banner_css(self.document)
        self._find_views()
        for name, _, kind in DELEGATED:
            self._listen(self.document, name, self._delegate(kind))
        # Our listeners are on: the boot loader's go, and what it kept is queued in order.
        records, refused = boot.take_records(self.window)
        for name, method in PAGE_EVENTS:
            self._listen(self.window, name, self._page_input(method))
        self._listen(self.document, "visibilitychange", self._visibility)
        self._listen(self.window, "pagehide", self._pagehide)
        self._listen(self.window, "pageshow", self._pageshow)
        for key in TIMERS:
            self.timer_callbacks[key] = self.owner.proxy(self._timer(key))
        self._expose()
        self._queue_boot_records(records, refused)
        self._run(self.client.start(self._now()))

    def _queue_boot_records(self, records, refused):
        """Push the clicks and submits made while the runtime booted, as if made now:
        the client keeps them until the first mount and sends them after its recovery."""
        for kind, element, data in records:
            view = element.closest("[" + constants.ATTR_VIEW + "]")
            if is_null(view) or getattr(view, "djViewId", None) not in self.view_elements:
                continue
            if kind == constants.BOOT_SUBMIT:
                params = form_data_params(data) if data is not None else {}
                params.update(value_params(element))
                handler = element.getAttribute(constants.ATTR_SUBMIT)
                self._push(view.djViewId, KIND_SUBMIT, handler, params, disable_targets(KIND_SUBMIT, element))
            else:
                params, _ = params_for(KIND_CLICK, element)
                handler = element.getAttribute(constants.ATTR_CLICK)
                self._push(view.djViewId, KIND_CLICK, handler, params, disable_targets(KIND_CLICK, element))
        if refused:
            message = "%d click(s) or submit(s) made while the page started were not kept" % refused
            message += " (at most %d, with %d characters of form text)" % (
                constants.BOOT_RECORD_LIMIT,
                constants.BOOT_RECORD_CHARS,
            )
            self._report(None, "queue_full", message)

    def stop(self):
        """Disconnect, and release every listener, timer and proxy (page teardown); the
        runtime cannot start again. ``window.djreconnect`` keeps its last state (and
        ``liveProxies``) but loses its functions."""
        if self.stopped:
            return
        self.stopped = True
        self._run(self.client.disconnect(self._now()))
        for target, name, listener in self.listeners:
            target.removeEventListener(name, listener)
        self.listeners = []
        for key in list(self.timer_ids):
            self._cancel_timer(key)
        if self.api is not None:
            for name in API_FUNCTIONS:
                js.Reflect.deleteProperty(self.api, name)
        self.owner.destroy_all()

    def _listen(self, target, name, function):
        listener = self.owner.proxy(function)
        target.addEventListener(name, listener)
        self.listeners.append((target, name, listener))

    def _find_views(self):
        tokens = self.config.get("tokens", {})
        elements = self.document.querySelectorAll("[" + constants.ATTR_VIEW + "]")
        for index in range(elements.length):
            element = elements.item(index)
            name = element.getAttribute(constants.ATTR_VIEW)
            view_id = element.id or "dj-view-%d" % (index + 1)
            element.djViewId = view_id  # a property, not an attribute: never in the HTML
            self.view_elements[view_id] = element
            self.client.add_view(view_id, name, tokens.get(name, ""))

    def _expose(self):
        api = to_js_object(
            {"state": self.client.state, "mounted": False, "transport": self.transports.name, "version": __version__}
        )
        api.connect = self.owner.proxy(lambda *args: self._run(self.client.start(self._now())))
        api.disconnect = self.owner.proxy(lambda *args: self._run(self.client.disconnect(self._now())))
        api.retry = self.owner.proxy(lambda *args: self._run(self.client.retry(self._now())))
        api.stop = self.owner.proxy(lambda *args: self.stop())
        api.liveProxies = live_proxies_hook()
        self.window.djreconnect = api
        self.api = api

    # --- inputs -----------------------------------------------------------------

    def _now(self):
        return js.performance.now()

    def _page_input(self, method):
        return lambda event: self._run(getattr(self.client, method)(self._now()))

    def _visibility(self, event):
        visible = self.document.visibilityState == "visible"
        self._run(self.client.visibility(self._now(), visible))

    def _pagehide(self, event):
        # The page is unloading (or entering the back/forward cache): the close that
        # follows (1001) is not a drop the user should see.
        self.leaving = True

    def _pageshow(self, event):
        self.leaving = False
        self._run(self.client.wake(self._now()))

    def _timer(self, key):
        def fire(*args):
            self.timer_ids.pop(key, None)
            self._run(self.client.timer(self._now(), key))

        return fire

    def _opened(self, generation):
        self.api.transport = self.transports.name  # SSE after a fallback
        roots = {}
        for view_id, element in self.view_elements.items():
            roots[view_id] = root_html(view_root(element))
        self._run(self.client.opened(self._now(), generation, roots))

    def _frame(self, generation, text):
        self._run(self.client.frame(self._now(), generation, text))

    def _closed(self, generation, code, reason):
        self._run(self.client.closed(self._now(), generation, code, reason))

    def _delegate(self, kind):
        attribute = [attr for _, attr, k in DELEGATED if k == kind][0]
        selector = "[" + attribute + "]"

        def handle(event):
            target = event.target
            if is_null(target) or is_null(getattr(target, "closest", None)):
                return
            if kind == KIND_CLICK and not is_null(target.closest("." + constants.CLASS_BANNER_RETRY)):
                self._run(self.client.retry(self._now()))
                return
            if kind in (KIND_CLICK, KIND_SUBMIT):
                element = target.closest(selector)
            else:
                element = target if target.hasAttribute(attribute) else None
            if is_null(element):
                return
            view = element.closest("[" + constants.ATTR_VIEW + "]")
            if is_null(view):
                return
            if kind == KIND_SUBMIT or (kind == KIND_CLICK and element.nodeName == "A"):
                event.preventDefault()
            params, recoverable = params_for(kind, element)
            # A field's input and change events: while they are in flight, replies leave it alone.
            source = self._event_source(element) if kind in (KIND_INPUT, KIND_CHANGE) else None
            form = element if kind == KIND_SUBMIT else None
            handler = element.getAttribute(attribute)
            disable_elements = disable_targets(kind, element)
            self._push(view.djViewId, kind, handler, params, disable_elements, recoverable, form, source)

        return handle

    def _event_source(self, field):
        """The number that names ``field`` as the source of its events (a new one the
        first time): while it has events in flight, replies leave its live state alone."""
        source = mark_event_source(field, self.sources + 1)
        self.sources = max(self.sources, source)
        return source

    def _push(self, view_id, kind, handler, params, disable_elements, recoverable=False, form=None, source=None):
        """Send (or queue) an event. ``recoverable``: an input or change of a field recovery
        covers; ``form``: the form of a submit, whose fields follow the server's render when
        the reply comes; ``source``: the number of the field that sent it."""
        ref = self.client.reserve_ref()
        if form is not None:
            self.submitted[(view_id, ref)] = submitted_fields(form)
        if disable_elements:
            disable(disable_elements)
            self.disabled[(view_id, ref)] = disable_elements
        self._run(self.client.push_event(self._now(), view_id, kind, handler, params, ref, recoverable, source))

    # --- effects ----------------------------------------------------------------

    def _run(self, todo):
        for effect in todo:
            try:
                self._do(effect)
            except Exception as error:
                # One effect that fails must not drop the ones after it (a retry timer, say).
                js.console.error("djreconnect: %s failed: %s" % (type(effect).__name__, error))
        api = self.api
        if api is not None:
            api.state = self.client.state
            api.mounted = self.client.mounted()

    def _do(self, effect):
        effect_type = type(effect)
        if effect_type is effects.Send:
            self.transport.send(effect.frame)
        elif effect_type is effects.ApplyPatch:
            self._apply(effect)
        elif effect_type is effects.RecoverView:
            element = self.view_elements[effect.view]
            if effect.mode != MOUNT_FIRST:
                reset_unrecovered(element)
            self._run(self.client.recovered(self._now(), effect.view, recovery_snapshot(element)))
            remember_server_values(element)
            self._mounted(element, effect.view, effect.mode)
        elif effect_type is effects.FinishEvent:
            self._enable(effect.view, effect.ref)
        elif effect_type is effects.StartTimer:
            self._cancel_timer(effect.key)
            self.timer_ids[effect.key] = js.setTimeout(self.timer_callbacks[effect.key], effect.delay_ms)
        elif effect_type is effects.CancelTimer:
            self._cancel_timer(effect.key)
        elif effect_type is effects.OpenTransport:
            self._close_transport()
            self.transport = self.transports.open(effect.generation)
        elif effect_type is effects.CloseTransport:
            self._close_transport()
        elif effect_type is effects.ShowStatus:
            if not self.leaving:
                self._show_status(effect)
        elif effect_type is effects.ReportError:
            self._report(effect.view, effect.code, effect.message)

    def _show_status(self, effect):
        attempt, max_attempts = effect.attempt, effect.max_attempts
        if effect.state == RECONNECTING:
            self.attempts_made = attempt
        elif effect.state == FAILED:
            attempt, max_attempts = self.attempts_made, self.max_attempts
        else:
            self.attempts_made = 0
        show_status(self.document, effect.state, attempt, max_attempts, effect.reason, self.banner)

    def _mounted(self, element, view_id, mode):
        """A view is live again: its recovery is on its way. Tell page scripts how it came
        back: ``mode`` is "first", "resume" or "remount"."""
        self.api.mounted = self.client.mounted()
        detail = to_js_object({"view": view_id, "mode": mode, "remount": mode != MOUNT_FIRST})
        element.dispatchEvent(
            js.CustomEvent.new("djreconnect:mounted", to_js_object({"detail": detail, "bubbles": True}))
        )

    def _cancel_timer(self, key):
        timer_id = self.timer_ids.pop(key, None)
        if timer_id is not None:
            js.clearTimeout(timer_id)

    def _close_transport(self):
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def _apply(self, effect):
        element = self.view_elements.get(effect.view)
        if element is None:
            return
        root = view_root(element)
        # A remount's render moves defaults; what the user typed stays.
        saved = save_user_input(root) if effect.mount and effect.ops else None
        try:
            apply_ops(effect.ops, PageDom(self.document, effect.mount, _keeper(effect.keep)), root)
        except PatchError as error:
            self._report(effect.view, "bad_patch", str(error))
        if saved:
            restore_user_input(root, saved)
        if effect.ref is not None and not effect.mount:
            submitted = self.submitted.pop((effect.view, effect.ref), None)
            if submitted:
                show_submitted(submitted)

    def _enable(self, view_id, ref):
        self.submitted.pop((view_id, ref), None)  # answered, refused or abandoned
        enable(self.disabled.pop((view_id, ref), ()))

    def _report(self, view_id, code, message):
        js.console.warn("djreconnect: %s (%s)" % (message, code))
        detail = to_js_object({"view": view_id, "code": code, "message": message})
        init = to_js_object({"detail": detail})
        self.document.dispatchEvent(js.CustomEvent.new("djreconnect:error", init))


def _keeper(keep):
    """Whether a field keeps its live state through a patch: it is one of the event
    sources ``keep`` names (it has events in flight); None when there are none."""
    if not keep:
        return None
    return lambda field: event_source(field) in keep


def main():
    """Start the runtime for this page (the include's entry point). If it cannot start,
    the page says so (``dj-boot-failed``, a ``dj-boot-error`` element) and the error is raised."""
    try:
        runtime = Runtime(js.window, read_config(js.document))
        runtime.start()
    except Exception as error:
        boot.show_failure(js.window, "the runtime raised while starting: %s: %s" % (type(error).__name__, error))
        raise
    return runtime
