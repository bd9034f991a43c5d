"""What the sans-I/O core asks its adapter to do. Small immutable-by-convention objects."""


class Effect:
    FIELDS = ()

    def __init__(self, *args):
        if len(args) != len(self.FIELDS):
            raise TypeError("%s takes %s" % (type(self).__name__, ", ".join(self.FIELDS)))
        for name, value in zip(self.FIELDS, args):
            setattr(self, name, value)

    def __eq__(self, other):
        return type(self) is type(other) and all(getattr(self, name) == getattr(other, name) for name in self.FIELDS)

    def __repr__(self):
        return "%s(%s)" % (
            type(self).__name__,
            ", ".join(repr(getattr(self, name)) for name in self.FIELDS),
        )


class OpenTransport(Effect):
    """Open a new transport. Inputs about it carry ``generation``; older ones are stale."""

    FIELDS = ("generation",)


class CloseTransport(Effect):
    """Close the current transport (if any) and forget it."""

    FIELDS = ("code", "reason")


class Send(Effect):
    """Send one frame (JSON text) on the open transport."""

    FIELDS = ("frame",)


class StartTimer(Effect):
    """Arm timer ``key`` to fire after ``delay_ms``, replacing any armed timer of that key."""

    FIELDS = ("key", "delay_ms")


class CancelTimer(Effect):
    FIELDS = ("key",)


class ShowStatus(Effect):
    """Show the connection state: body classes, banner, attempt attribute and property.

    ``attempt`` and ``max_attempts`` are set while reconnecting; ``reason`` says
    why the connection failed, in the failed state.
    """

    FIELDS = ("state", "attempt", "max_attempts", "reason")


class ApplyPatch(Effect):
    """Apply patch ``ops`` to view ``view``. ``mount`` is true for the patch of a (re)mount,
    which must change attributes only, never what the user typed. ``ref`` is the event
    it answers, or None. ``keep`` names the event sources (fields, see
    ``Client.push_event``) with events still unanswered or waiting to be sent: this render
    is older than what the user made of them, so they keep their live value, checked state
    and selection."""

    FIELDS = ("view", "ops", "mount", "ref", "keep")

    def __init__(self, view, ops, mount, ref, keep=()):
        Effect.__init__(self, view, ops, mount, ref, keep)


class RecoverView(Effect):
    """Recover view ``view``, which is back: take its recovery snapshot and pass it to
    ``Client.recovered``. ``mode`` says how it came back: "first" (the page's first
    mount), "resume" (its session was kept) or "remount" (a fresh view)."""

    FIELDS = ("view", "mode")


class FinishEvent(Effect):
    """Finish the event ``ref`` of view ``view``, answered or abandoned: undo its
    dj-disable-with and forget what its submit sent."""

    FIELDS = ("view", "ref")


class ReportError(Effect):
    """Tell the page about an error (a refused event, a failed mount)."""

    FIELDS = ("view", "code", "message")
