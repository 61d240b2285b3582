"""uvicorn's httptools protocol with the limits it lacks: request-head size and two timeouts.

uvicorn (0.54, httptools) bounds neither the request head (httptools has no size limit;
`h11_max_incomplete_event_size` only applies to the h11 parser) nor the time a client takes
to send it or its body: its one timer is keep-alive, armed after a response. A client
trickling a header byte a second, or announcing a body and falling silent, held its
connection, and for a body the request's task, for as long as it liked. This subclass adds:

- a cap on the request line plus headers: 414 for the URL, 431 for the headers, then close;
- a deadline for the whole head, from its first byte (or from connecting): 408, then close;
- an idle timeout on the body: no byte for N seconds while the server waits for one means
  408 and close. Idle, not total: a 50 GiB upload that keeps sending is never cut, and time
  the server itself spends not reading (storage backpressure) does not count.

It is selected with uvicorn's own `http=` option (`app.gunicorn_conf.post_worker_init`, and
`app.cli` for the local server), so the worker class and the image command stay stock.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.settings import Settings

ERR_URL_TOO_LONG = (
    "The request line is longer than the server's limit of {limit} bytes "
    "(OPSML_MAX_HEADER_BYTES); send long values in a JSON body"
)
ERR_HEADERS_TOO_LARGE = (
    "The request headers are larger than the server's limit of {limit} bytes "
    "(OPSML_MAX_HEADER_BYTES)"
)
ERR_HEADER_TIMEOUT = (
    "The request headers did not arrive within {timeout:g} s (OPSML_HEADER_TIMEOUT_S)"
)
ERR_BODY_IDLE = (
    "No request body bytes arrived for {timeout:g} s (OPSML_BODY_IDLE_TIMEOUT_S); "
    "nothing was stored"
)
# What httptools adds around each header on the wire (": " and CRLF).
_HEADER_OVERHEAD = 4
# How long a refused client may go on sending (discarded) before the socket is closed.
_LINGER_S = 2.0


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int
    header_timeout_s: float
    body_idle_timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            header_timeout_s=settings.header_timeout_s,
            body_idle_timeout_s=settings.body_idle_timeout_s,
        )


class _HeadTooLargeError(Exception):
    """Raised from a parser callback; httptools turns it into a parser error."""


def protocol_class(limits: HttpLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol to pass as uvicorn's `http=`, bound to these limits."""
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[HttpLimits]

    _head_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _head_started = False
    _last_body_at = 0.0
    _refusal: tuple[int, str] | None = None
    _lingering = False

    # Connection lifecycle

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._head_started = True
        if self._head_timer is None:  # a kept-alive connection's next request
            self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url), 414, ERR_URL_TOO_LONG)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + _HEADER_OVERHEAD, 431, ERR_HEADERS_TOO_LARGE)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self._head_started = False
        super().on_headers_complete()
        # A request without a body completes in this same feed; the timer is then cancelled.
        self._last_body_at = self.loop.time()
        self._body_timer = self.loop.call_later(self.limits.body_idle_timeout_s, self._body_idle)

    def on_body(self, body: bytes) -> None:
        self._last_body_at = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._cancel_body_timer()
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        if not self._lingering:
            super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every parser error with 400; ours from `_count_head` say more.
        if self._refusal is None:
            super().send_400_response(msg)
            return
        status, message = self._refusal
        self._write_refusal(status, message)

    # Limits

    def _count_head(self, size: int, status: int, message: str) -> None:
        self._head_bytes += size
        if self._head_bytes > self.limits.max_header_bytes:
            self._refusal = (status, message.format(limit=self.limits.max_header_bytes))
            raise _HeadTooLargeError

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timeout)

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A pipelined request is still being answered: finish it, then close.
            cycle.keep_alive = False
            return
        if not self._head_started:  # connected and never sent a byte: nobody to tell
            self.transport.close()
            return
        self._write_refusal(408, ERR_HEADER_TIMEOUT.format(timeout=self.limits.header_timeout_s))

    def _body_idle(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused or cycle.body:
            # Bytes are waiting for the app (storage is slow, or the app has not started
            # reading): the client is not the one who is idle.
            self._last_body_at = now
        remaining = self._last_body_at + self.limits.body_idle_timeout_s - now
        if remaining > 0:
            self._body_timer = self.loop.call_later(remaining, self._body_idle)
            return
        started = cycle.response_started
        # The app's next receive() reports a disconnect, so an upload aborts cleanly, and
        # whatever it answers afterwards is dropped.
        cycle.disconnected = True
        cycle.message_event.set()
        if started:
            self.transport.close()
            return
        self._write_refusal(408, ERR_BODY_IDLE.format(timeout=self.limits.body_idle_timeout_s))

    def _write_refusal(self, status: int, message: str) -> None:
        body = json.dumps({"detail": message}).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        # Closing with unread bytes in the socket makes the kernel send a reset, and the
        # client loses the answer: end our side, drop what still comes, close shortly after.
        self._lingering = True
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(_LINGER_S, self.transport.close)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
