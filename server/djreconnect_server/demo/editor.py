"""The demo's editor view: the seed's reconnection-resilient form, and one field of each kind."""

from typing import Literal, Optional

from djreconnect_server import LiveView, event_handler

CATEGORIES = ("news", "guide", "opinion")
VISIBILITIES = ("public", "unlisted", "private")
TAGS = ("python", "web", "networking", "ux")
# The choices as annotations: a value outside them is refused before a handler runs.
Category = Literal[CATEGORIES]
Visibility = Literal[VISIBILITIES]
Tag = Literal[TAGS]
# restore_editor calls the state shows (the newest); restore_count counts them all.
RESTORE_CALLS_KEPT = 10


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
        self.published = value

    @event_handler()
    def set_category(self, value: Category, **kwargs):
        self.category = value

    @event_handler()
    def set_visibility(self, value: Visibility, **kwargs):
        self.visibility = value

    @event_handler()
    def set_priority(self, value: Optional[int] = None, **kwargs):
        self.priority = value  # an empty field arrives as None

    @event_handler()
    def set_tags(self, value: list[Tag] = (), **kwargs):
        self.tags = list(value)

    @event_handler()
    def increment(self, amount: int = 1, **kwargs):
        self.clicks += amount

    @event_handler()
    def save_form(self, **form):
        self.saves += 1
        self.saved = form
