"""The demo's editor view: the seed's reconnection-resilient form, and one field of each kind."""

from djreconnect_server import LiveView, event_handler
from djreconnect_server.views import HandlerError

CATEGORIES = ("news", "guide", "opinion")
VISIBILITIES = ("public", "unlisted", "private")
TAGS = ("python", "web", "networking", "ux")
# restore_editor calls the state shows (the newest); restore_count counts them all.
RESTORE_CALLS_KEPT = 10


def _choice(value, allowed, what):
    if value not in allowed:
        raise HandlerError("bad_params", "%s must be one of %s, not %r" % (what, ", ".join(allowed), value))
    return value


class EditorView(LiveView):
    template_name = "editor.html"

    def mount(self, request, **kwargs):
        self.doc_id = "doc-1"
        self.title = ""
        self.body = ""
        self.search = ""
        self.cursor = ""
        self.published = False
        self.category = CATEGORIES[0]
        self.visibility = VISIBILITIES[0]
        self.priority = 3
        self.tags = []
        self.clicks = 0
        self.saves = 0
        self.saved = {}
        self.restore_calls = []
        self.restore_count = 0

    def get_context(self):
        context = LiveView.get_context(self)
        context.update(categories=CATEGORIES, visibilities=VISIBILITIES, all_tags=TAGS)
        return context

    @event_handler()
    def validate_title(self, value: str = "", **kwargs):
        self.title = value

    @event_handler()
    def preview(self, value: str = "", **kwargs):
        self.body = value

    @event_handler()
    def filter_tags(self, value: str = "", **kwargs):
        self.search = value

    @event_handler()
    def sync_cursor(self, value: str = "", **kwargs):
        self.cursor = value

    @event_handler()
    def restore_editor(self, doc_id: str = "", cursor: str = "", **kwargs):
        self.doc_id = doc_id
        self.cursor = cursor
        self.restore_calls = self.restore_calls[-(RESTORE_CALLS_KEPT - 1) :] + [{"doc_id": doc_id, "cursor": cursor}]
        self.restore_count += 1

    @event_handler()
    def set_published(self, value: bool = False, **kwargs):
        self.published = bool(value)

    @event_handler()
    def set_category(self, value: str = "", **kwargs):
        self.category = _choice(value, CATEGORIES, "category")

    @event_handler()
    def set_visibility(self, value: str = "", **kwargs):
        self.visibility = _choice(value, VISIBILITIES, "visibility")

    @event_handler()
    def set_priority(self, value: str = "", **kwargs):
        if value == "":
            self.priority = None
            return
        try:
            self.priority = int(value)
        except ValueError:
            raise HandlerError("bad_params", "priority must be a whole number, not %r" % (value,))

    @event_handler()
    def set_tags(self, value: list = (), **kwargs):
        for tag in value:
            _choice(tag, TAGS, "tag")
        self.tags = list(value)

    @event_handler()
    def increment(self, amount: str = "1", **kwargs):
        try:
            self.clicks += int(amount)
        except ValueError:
            raise HandlerError("bad_params", "amount must be a whole number, not %r" % (amount,))

    @event_handler()
    def save_form(self, **form):
        self.saves += 1
        self.saved = form
