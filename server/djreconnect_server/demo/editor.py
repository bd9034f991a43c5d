"""The demo's editor view: the seed's reconnection-resilient form, and one field of each kind."""

from typing import Any, Literal, Optional, cast, get_args

from starlette.requests import HTTPConnection

from djreconnect_server import LiveView, event_handler
from djreconnect_server.views import HandlerError

# The choices as annotations: a value outside them is refused before a handler runs.
Category = Literal["news", "guide", "opinion"]
Visibility = Literal["public", "unlisted", "private"]
Tag = Literal["python", "web", "networking", "ux"]
CATEGORIES: tuple[str, ...] = get_args(Category)
VISIBILITIES: tuple[str, ...] = get_args(Visibility)
TAGS: tuple[str, ...] = get_args(Tag)
# Shared comments: the topic they are broadcast on, how many the service keeps (and each
# page shows), and the longest comment.
COMMENTS_TOPIC = "comments"
COMMENTS_KEPT = 20
MAX_COMMENT_CHARS = 280


class CommentBoard:
    """The demo service's comments, oldest first, the last COMMENTS_KEPT of them, in this
    process (the demo with one process)."""

    shared = False

    def __init__(self) -> None:
        self.comments: list[str] = []

    async def add(self, text: str) -> list[str]:
        self.comments = (self.comments + [text])[-COMMENTS_KEPT:]
        return list(self.comments)

    async def refresh(self, message: Any = None) -> None:
        """A broadcast on the comments topic reached this process."""


class RedisCommentBoard(CommentBoard):
    """The comments of a demo of several processes: a Redis list (the last COMMENTS_KEPT),
    with this process's copy for pages it renders, refreshed after every broadcast."""

    shared = True

    def __init__(self, url: str, key: str = "dj:demo:comments") -> None:
        from djreconnect_server.redisstore import connect

        super().__init__()
        self.redis = connect(url)
        self.key = key

    async def add(self, text: str) -> list[str]:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self.key, text)
            pipe.ltrim(self.key, -COMMENTS_KEPT, -1)
            pipe.lrange(self.key, 0, -1)
            *_, comments = await pipe.execute()
        self.comments = list(comments)
        return list(comments)

    async def refresh(self, message: Any = None) -> None:
        # The client decodes replies (decode_responses): the items are str.
        self.comments = cast(list[str], list(await self.redis.lrange(self.key, 0, -1)))


BOARD = CommentBoard()


def use_board(board: CommentBoard) -> None:
    """Make ``board`` the demo's comment board (the app factory picks it by store)."""
    global BOARD
    BOARD = board


# restore_editor calls the state shows (the newest); restore_count counts them all.
RESTORE_CALLS_KEPT = 10


class EditorView(LiveView):
    template_name = "editor.html"

    def mount(self, request: HTTPConnection, **kwargs: Any) -> None:
        self.doc_id = "doc-1"
        self.title = ""
        self.body = ""
        self.search = ""
        self.cursor = ""
        self.published = False
        self.category = CATEGORIES[0]
        self.visibility = VISIBILITIES[0]
        self.priority: int | None = 3
        self.tags: list[str] = []
        self.clicks = 0
        self.saves = 0
        self.saved: dict[str, Any] = {}
        self.restore_calls: list[dict[str, str]] = []  # the last RESTORE_CALLS_KEPT calls, for the demo's panel
        self.restore_count = 0
        self.comments = list(BOARD.comments)
        self.subscribe(COMMENTS_TOPIC)

    def get_context(self) -> dict[str, Any]:
        context = LiveView.get_context(self)
        context.update(categories=CATEGORIES, visibilities=VISIBILITIES, all_tags=TAGS)
        return context

    @event_handler()
    def validate_title(self, value: str = "", **kwargs: Any) -> None:
        self.title = value

    @event_handler()
    def preview(self, value: str = "", **kwargs: Any) -> None:
        self.body = value

    @event_handler()
    def filter_tags(self, value: str = "", **kwargs: Any) -> None:
        self.search = value

    @event_handler()
    def sync_cursor(self, value: str = "", **kwargs: Any) -> None:
        self.cursor = value

    @event_handler()
    def restore_editor(self, doc_id: str = "", cursor: str = "", **kwargs: Any) -> None:
        self.doc_id = doc_id
        self.cursor = cursor
        self.restore_count += 1
        self.restore_calls = self.restore_calls[-(RESTORE_CALLS_KEPT - 1) :] + [{"doc_id": doc_id, "cursor": cursor}]

    @event_handler()
    def set_published(self, value: bool = False, **kwargs: Any) -> None:
        self.published = value

    @event_handler()
    def set_category(self, value: Category, **kwargs: Any) -> None:
        self.category = value

    @event_handler()
    def set_visibility(self, value: Visibility, **kwargs: Any) -> None:
        self.visibility = value

    @event_handler()
    def set_priority(self, value: Optional[int] = None, **kwargs: Any) -> None:
        self.priority = value  # an empty field arrives as None

    @event_handler()
    def set_tags(self, value: list[Tag] = (), **kwargs: Any) -> None:  # type: ignore[assignment]  # () is never changed
        self.tags = list(value)

    @event_handler()
    def increment(self, amount: int = 1, **kwargs: Any) -> None:
        self.clicks += amount

    @event_handler()
    def save_form(self, **form: Any) -> None:
        self.saves += 1
        self.saved = form

    @event_handler()
    async def add_comment(self, comment: str = "", **form: Any) -> None:
        text = comment.strip()
        if not text:
            return
        if len(text) > MAX_COMMENT_CHARS:
            raise HandlerError("bad_params", "a comment is at most %d characters" % MAX_COMMENT_CHARS)
        self.comments = await BOARD.add(text)
        self.broadcast(COMMENTS_TOPIC, {"comments": self.comments})

    def handle_info(self, message: Any) -> None:
        if isinstance(message, dict) and "comments" in message:
            # Several processes: the list as Redis has it now (BOARD refreshed it first),
            # so that two comments added at once on two processes end the same everywhere.
            source = BOARD.comments if BOARD.shared else message["comments"]
            self.comments = list(source)[-COMMENTS_KEPT:]
