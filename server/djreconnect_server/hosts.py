"""Which hosts a backend answers for, and which origins may open its live connection.

A ``Host`` header names the site the browser thinks it is talking to. A DNS-rebinding
page (``evil.example`` resolving to the backend's address) sends ``Host: evil.example``
and ``Origin: http://evil.example``: the two agree, so an origin check that compares them
lets it in. ``TrustedHosts`` answers only for the hosts it was given, and an origin is
same-site only when its host is one of them (never because it matches the ``Host``).
"""

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# Hosts a backend with no public_url answers for: this machine's own names.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")
_IPV6_CHARS = frozenset("0123456789abcdef:.")


def parse_host(value: object) -> tuple[str, int | None] | None:
    """``(host, port)`` from a ``Host`` header or an origin's authority: the host in lower
    case (an IPv6 address in brackets) and the port as an int, or None when absent.
    Anything that is not a plain host name, IPv4 or bracketed IPv6 address is None."""
    if not isinstance(value, str) or not value or len(value) > 300:
        return None
    value = value.lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or not set(value[1:end]) <= _IPV6_CHARS or ":" not in value[1:end]:
            return None
        host, rest = value[: end + 1], value[end + 1 :]
    else:
        host, colon, port = value.partition(":")
        rest = colon + port
        if not host or not set(host) <= _HOST_CHARS:
            return None
    if not rest:
        return host, None
    port = rest[1:]
    if not rest.startswith(":") or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def parse_origin(origin: object) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an ``Origin`` header (port filled in from the scheme),
    or None for ``null``, other schemes, paths or anything malformed."""
    if not isinstance(origin, str):
        return None
    scheme, sep, authority = origin.rstrip("/").partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS or "/" in authority or "@" in authority:
        return None
    parsed = parse_host(authority)
    if parsed is None:
        return None
    host, port = parsed
    return scheme, host, port if port is not None else DEFAULT_PORTS[scheme]


class TrustedHosts:
    """The hosts a backend answers for.

    Each entry is a host (any port: ``example.com``, ``127.0.0.1``, ``[::1]``), a host and
    port (``127.0.0.1:8000``), every subdomain of a domain (``*.example.com``), or ``*``
    (any host: turns the ``Host`` check off, and then no origin is same-site, so the
    backend's own pages must be listed in ``allowed_origins``).
    """

    def __init__(self, entries: str | Iterable[str]) -> None:
        if isinstance(entries, str):
            entries = [entries]
        self.any = False
        self.exact: set[tuple[str, int | None]] = set()  # (host, port or None)
        self.suffixes: list[str] = []  # ".example.com"
        for entry in entries:
            if not isinstance(entry, str):
                raise ValueError("a trusted host must be a string, not %r" % (entry,))
            entry = entry.strip().lower()
            if entry == "*":
                self.any = True
            elif entry.startswith("*."):
                if parse_host(entry[2:]) is None or ":" in entry:
                    raise ValueError("%r is not a domain pattern like '*.example.com'" % (entry,))
                self.suffixes.append(entry[1:])
            else:
                parsed = parse_host(entry)
                if parsed is None:
                    raise ValueError("%r is not a host, host:port or '*.domain' pattern" % (entry,))
                self.exact.add(parsed)
        if not (self.any or self.exact or self.suffixes):
            raise ValueError("trusted_hosts is empty: no request would be answered")

    def named(self, host: str, port: int | None) -> bool:
        """Whether ``host`` (and ``port``) is one of the listed hosts (``*`` aside)."""
        if (host, None) in self.exact or (host, port) in self.exact:
            return True
        return any(host.endswith(suffix) for suffix in self.suffixes)

    def allows_host_header(self, value: str | None) -> bool:
        """Whether a request with this ``Host`` header is answered."""
        if self.any:
            return True
        parsed = parse_host(value)
        return parsed is not None and self.named(*parsed)

    def own_origin(self, origin: str, host_header: str | None) -> bool:
        """Whether ``origin`` is the backend's own: a listed host, and the very host and port
        the request was sent to (so a page on another port of the same host is foreign)."""
        parsed = parse_origin(origin)
        requested = parse_host(host_header)
        if parsed is None or requested is None:
            return False
        scheme, host, port = parsed
        if not self.named(host, port):
            return False
        requested_host, requested_port = requested
        # A proxy terminating TLS may forward to plain HTTP: the ports compare under the
        # origin's scheme, where an absent port is the scheme's default.
        if requested_port is None:
            requested_port = DEFAULT_PORTS[scheme]
        return (host, port) == (requested_host, requested_port)

    def __repr__(self) -> str:
        entries = ["*"] if self.any else []
        entries += ["%s:%d" % (h, p) if p else h for h, p in sorted(self.exact, key=str)]
        entries += ["*" + suffix for suffix in self.suffixes]
        return "TrustedHosts(%r)" % (entries,)


class TrustedHostMiddleware:
    """Refuse, with 400, every HTTP request and WebSocket upgrade whose ``Host`` header is
    not trusted. (Starlette's middleware of that name ignores ports and would let the demo
    answer for every port of 127.0.0.1; this one keeps them.)"""

    def __init__(self, app: ASGIApp, trusted: TrustedHosts) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.trusted.any:
            await self.app(scope, receive, send)
            return
        if self.trusted.allows_host_header(Headers(scope=scope).get("host")):
            await self.app(scope, receive, send)
            return
        body = b"Invalid host header"
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"x-content-type-options", b"nosniff"),
        ]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 400, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": 400, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:  # a server without the denial-response extension answers 403
            await send({"type": "websocket.close", "code": 1008})
