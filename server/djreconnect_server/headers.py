"""Headers on every answer of a backend: no content sniffing, no framing of pages, a referrer
policy, and the cache policy of assets.

A response that already has one of these headers keeps its own: a route that must be
framed sets ``X-Frame-Options``/``Content-Security-Policy`` itself.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOSNIFF = (b"x-content-type-options", b"nosniff")
# Pages (text/html) may not be framed by any site (clickjacking), old browsers and new.
PAGE_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
)
# Full URLs go to the backend's own origin only; other sites see no Referer at all.
REFERRER_POLICY = (b"referrer-policy", b"same-origin")

# Cache-Control for assets: a URL that names its content's version may be kept for a year
# and never revalidated; any other is revalidated on every use (ETag / Last-Modified make
# that a 304 when nothing changed).
CACHE_IMMUTABLE = "public, max-age=31536000, immutable"
CACHE_REVALIDATE = "no-cache"


def cache_control(versioned: bool) -> str:
    """The Cache-Control of an asset whose URL is ``versioned`` (changes whenever its
    content does) or not. Switch a route by changing what it passes here."""
    return CACHE_IMMUTABLE if versioned else CACHE_REVALIDATE


def _names(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    return {name.lower() for name, _ in headers}


class SecurityHeadersMiddleware:
    """Adds ``X-Content-Type-Options: nosniff`` and the referrer policy to every HTTP
    response, and the framing policy to HTML pages, unless the response sets them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
                present = _names(headers)
                added = [NOSNIFF, REFERRER_POLICY]
                content_type = dict((n.lower(), v) for n, v in headers).get(b"content-type", b"")
                if content_type.split(b";")[0].strip().lower() == b"text/html":
                    added += PAGE_HEADERS
                headers += [header for header in added if header[0] not in present]
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)
