"""Which requests the explorer answers: its own host names, its own origin, bodies within the limit.

A page on another site can make the browser send requests to 127.0.0.1 (a form post needs no
permission), and a DNS-rebinding page can even read the answers. So the server answers only a
``Host`` it is bound under (Starlette's ``TrustedHostMiddleware``), refuses a state-changing request
whose ``Origin`` or ``Referer`` is another site, and stops a request body at the limit while it
streams in, before any parser has buffered it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_OVERHEAD = 64 * 1024  # a multipart body's boundaries and headers around the file itself


def host_name(host: str) -> str:
    """A bind address as a ``Host`` header names it: an IPv6 literal in brackets, lower case."""
    host = host.strip().lower()
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def allowed_hosts(extra: Iterable[str] = ()) -> list[str]:
    """The loopback names plus the addresses the server was bound to (``--host``)."""
    names = list(LOCAL_HOSTS)
    for host in extra:
        name = host_name(host)
        if name and name not in names:
            names.append(name)
    return names


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def foreign_origin(scope) -> str | None:
    """The ``Origin`` (or, without one, the ``Referer``) of a request when it is not this server's
    own; ``None`` when it is, or when neither is sent (a command-line client, not a web page)."""
    headers = _headers(scope)
    own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower()
    origin = headers.get("origin")
    if origin is not None:
        return None if origin.strip().lower() == own else origin
    referer = headers.get("referer")
    if referer is not None:
        parts = urlsplit(referer.strip())
        return None if f"{parts.scheme}://{parts.netloc}".lower() == own else referer
    return None


async def _answer(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


class RequestGuard:
    """ASGI middleware: refuses cross-origin state changes (403) and bodies above ``max_body``
    bytes (413), counting the body as it arrives."""

    def __init__(self, app, max_body: int, upload_limit: int) -> None:
        self.app = app
        self.max_body = max_body
        self.upload_limit = upload_limit  # what the message names: the file's limit, not the form's

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        origin = foreign_origin(scope)
        if origin is not None:
            await _answer(send, 403, f"cross-origin request refused: {origin!r} is not this server's page")
            return
        too_large = f"upload is above the limit of {self.upload_limit / 1e6:g} MB"
        length = _headers(scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            await _answer(send, 413, too_large)
            return
        received, refused = 0, False

        async def counted():
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body and not refused:
                    refused = True
                    await _answer(send, 413, too_large)
                    raise _BodyTooLarge()
            return message

        async def unless_refused(message) -> None:
            if not refused:  # the app's own answer to the cut-off body is dropped
                await send(message)

        try:
            await self.app(scope, counted, unless_refused)
        except _BodyTooLarge:
            pass


def add_guards(app, hosts: Iterable[str], upload_limit: int) -> None:
    """Install both guards on a FastAPI/Starlette app; the host check runs first."""
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    app.add_middleware(RequestGuard, max_body=upload_limit + FORM_OVERHEAD, upload_limit=upload_limit)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(hosts))  # outermost
