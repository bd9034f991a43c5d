"""Every name the runtime and the server agree on: attributes, classes, close codes, defaults."""

# --- DOM attributes -------------------------------------------------------
ATTR_VIEW = "dj-view"
ATTR_ROOT = "dj-root"
ATTR_CLICK = "dj-click"
ATTR_CHANGE = "dj-change"
ATTR_INPUT = "dj-input"
ATTR_SUBMIT = "dj-submit"
ATTR_VALUE_PREFIX = "dj-value-"
ATTR_DISABLE_WITH = "dj-disable-with"
ATTR_UPDATE = "dj-update"
UPDATE_IGNORE = "ignore"
ATTR_NO_RECOVER = "dj-no-recover"
ATTR_AUTO_RECOVER = "dj-auto-recover"
ATTR_KEY = "dj-key"
ATTR_DATA_PREFIX = "data-"
# Set by the runtime while a dj-disable-with element waits for its reply:
# holds the element's original text.
ATTR_DISABLED_TEXT = "dj-disabled-text"

# Node.nodeType of an element (the DOM's own number).
DOM_ELEMENT_NODE = 1
# Element.nodeName of the form fields, whose live state (value, checked, selection) is the
# user's: what recovery restores and a remount's render leaves alone.
FORM_FIELD_TAGS = ("INPUT", "SELECT", "TEXTAREA")

# --- <body> state ---------------------------------------------------------
CLASS_CONNECTED = "dj-connected"
CLASS_DISCONNECTED = "dj-disconnected"
CLASS_RECONNECT_FAILED = "dj-reconnect-failed"
CLASS_BANNER = "dj-reconnecting-banner"
CLASS_BANNER_RETRY = "dj-reconnect-retry"
ATTR_RECONNECT_ATTEMPT = "data-dj-reconnect-attempt"
CSS_RECONNECT_ATTEMPT = "--dj-reconnect-attempt"
BANNER_ID = "dj-reconnecting-banner"
CONFIG_ELEMENT_ID = "djreconnect-config"

# --- transports -----------------------------------------------------------
TRANSPORT_WEBSOCKET = "ws"
TRANSPORT_SSE = "sse"
TRANSPORTS = (TRANSPORT_WEBSOCKET, TRANSPORT_SSE)

# --- interpreters (PyScript script types) -----------------------------------
INTERPRETER_PYODIDE = "pyodide"
INTERPRETER_MICROPYTHON = "micropython"
INTERPRETERS = (INTERPRETER_PYODIDE, INTERPRETER_MICROPYTHON)

# URL paths under the backend's prefix.
DEFAULT_PREFIX = "/djreconnect"
PATH_WEBSOCKET = "/ws"
PATH_SSE = "/sse"
PATH_POST = "/post"

# --- the SSE transport --------------------------------------------------------
# The stream's first event names its channel and CSRF token; a "close" event says why the
# server ends the stream (a refusal's code and reason).
SSE_EVENT_CHANNEL = "channel"
SSE_EVENT_CLOSE = "close"
# Headers of a POST: the channel it feeds, and that channel's CSRF token.
SSE_HEADER_CHANNEL = "X-DJ-Channel"
SSE_HEADER_CSRF = "X-DJ-CSRF"
# Most frames one POST may carry (the runtime splits longer outboxes).
SSE_MAX_FRAMES_PER_POST = 256

# --- close codes (RFC 6455 and the application range) ---------------------
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_ABNORMAL = 1006
CLOSE_INTERNAL_ERROR = 1011
CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013
# 4000-4999: the application refused; retrying cannot help.
CLOSE_APP_MIN = 4000
CLOSE_APP_MAX = 4999
CLOSE_BAD_FRAME = 4000
CLOSE_UNKNOWN_VIEW = 4004
CLOSE_FORBIDDEN_ORIGIN = 4003
CLOSE_BAD_TOKEN = 4001
CLOSE_RATE_LIMITED = 4029
# The close reason that comes with 1012 when a server restarts on purpose (a deploy): the
# page reconnects at a uniformly random moment within restart_window_ms, not on the
# backoff schedule (a 1012 without it, like a crash, keeps the backoff).
CLOSE_REASON_RESTART = "restart"

# --- defaults (milliseconds unless named otherwise) -----------------------
DEFAULT_BACKOFF_MIN_MS = 500
DEFAULT_BACKOFF_BASE_MS = 1000
DEFAULT_BACKOFF_MAX_MS = 30000
DEFAULT_MAX_ATTEMPTS = 10
# A ping every 25 s keeps proxies with 60 s idle timeouts from closing an idle
# connection; a pong missing for 10 s more marks the connection half-open.
DEFAULT_HEARTBEAT_INTERVAL_MS = 25000
DEFAULT_HEARTBEAT_TIMEOUT_MS = 10000
# How long an attempt to open a transport may take before it counts as failed.
DEFAULT_CONNECT_TIMEOUT_MS = 10000
# Events waiting on the page to be sent: clicks and submits made while disconnected, and
# events made while MAX_IN_FLIGHT others are unanswered. At most this many, holding at most
# this many characters of JSON (their frames); past either, a new one is refused.
DEFAULT_OFFLINE_QUEUE_LIMIT = 50
DEFAULT_OFFLINE_QUEUE_CHARS = 1 << 20
# Events a page keeps in flight (sent, not yet answered) on its connection, all its views
# together: past either bound, new ones wait on the page until replies come. It stays below
# the server's DEFAULT_EVENT_RECORD_SIZE: after a drop, a resume sends every unanswered event
# again, and only an id the server's exactly-once record still holds is answered once rather
# than refused as expired. (One event alone may exceed the characters: it then goes by itself.)
MAX_IN_FLIGHT = 128
MAX_IN_FLIGHT_CHARS = 1 << 20
# Largest inbound frame the server accepts.
DEFAULT_MAX_FRAME_BYTES = 1 << 20
# A page told the server restarts (1012 + CLOSE_REASON_RESTART) reconnects within this window.
DEFAULT_RESTART_WINDOW_MS = 2000
# A server that restarts closes its connections this many at a time, this far apart (ms).
RESTART_BATCH = 100
RESTART_BATCH_PAUSE_MS = 10
# A short blip heals unseen: the banner and dj-disconnected wait this long after a drop.
DEFAULT_BANNER_DELAY_MS = 500

# --- sessions (server) ------------------------------------------------------
# How long the server keeps a session whose page went away (seconds).
DEFAULT_SESSION_RETENTION_S = 300
# At most this many retained sessions, and this many bytes of them; past either the
# least recently used go first.
DEFAULT_MAX_RETAINED_SESSIONS = 10000
DEFAULT_MAX_RETAINED_BYTES = 256 << 20
# Event ids a session remembers for exactly-once delivery.
DEFAULT_EVENT_RECORD_SIZE = 256
# Where sessions are kept: "memory", "sqlite:///PATH", "redis://HOST:PORT/DB".
DEFAULT_STORE = "memory"

# --- the reconnection banner's words ----------------------------------------
# Placeholders: {attempt} and {max} in every text, {reason} in the failed one and
# its button. Filled in by djreconnect.banner, never by str.format.
DEFAULT_BANNER_RECONNECTING = "Reconnecting... (attempt {attempt} of {max})"
DEFAULT_BANNER_FAILED = "Connection lost: {reason}."
DEFAULT_BANNER_RETRY = "Try again"
# Their keys in the runtime's config (and the Settings arguments of the same names).
CONFIG_BANNER_RECONNECTING = "banner_reconnecting"
CONFIG_BANNER_FAILED = "banner_failed"
CONFIG_BANNER_RETRY = "banner_retry"
# Longest banner text accepted, in characters.
MAX_BANNER_TEXT = 500

# --- boot (the include's loader and the runtime's start) ---------------------
CLASS_BOOT_FAILED = "dj-boot-failed"  # on <body> when the runtime could not start
CLASS_BOOT_ERROR = "dj-boot-error"  # the element that says what failed
BOOT_GLOBAL = "djreconnectBoot"  # window property the loader sets; the runtime takes its records
BOOT_CLICK = "click"  # record kinds
BOOT_SUBMIT = "submit"
# Clicks and submits kept while the runtime boots: at most this many, with at most
# this much form text (names and values, in characters); past either, one is refused.
BOOT_RECORD_LIMIT = DEFAULT_OFFLINE_QUEUE_LIMIT
BOOT_RECORD_CHARS = 1 << 20
# No start within this long is a failure (shown until the runtime does start).
DEFAULT_BOOT_TIMEOUT_MS = 60000
BOOT_ERROR_MESSAGE = "This page could not start: "
BOOT_ERROR_CSS = (
    ".%s { position: fixed; top: 0; left: 0; right: 0; z-index: 2147483647; padding: 0.5em 1em;"
    " font: 14px/1.4 system-ui, sans-serif; background: #b91c1c; color: #fff; }" % CLASS_BOOT_ERROR
)

# --- assets (served under the prefix) ------------------------------------------
PATH_NPM = "/npm"  # npm's packages, laid out as on an npm CDN: /npm/NAME@VERSION/FILE
PATH_WHEELS = "/wheels"  # the browser wheel: /wheels/djreconnect-VERSION-py3-none-any.whl
PATH_BOOT_JS = "/boot.js"  # the boot loader, for static pages
PATH_PYSCRIPT_CONFIG = "/pyscript.json"
DEFAULT_CDN_URL = "https://cdn.jsdelivr.net/npm"
ASSETS_AUTO = "auto"  # local when npm's packages are installed where the backend looks, else the CDN
ASSETS_LOCAL = "local"
ASSETS_CDN = "cdn"
ASSET_MODES = (ASSETS_AUTO, ASSETS_LOCAL, ASSETS_CDN)
