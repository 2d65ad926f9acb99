"""uvicorn's HTTP protocol with a deadline on each request's head.

uvicorn closes a keep-alive connection that stays idle after an answer, but a connection that
never sends a request, or sends its headers a byte at a time, is held forever: a few thousand
of them exhaust the server (slowloris). Here the head of each request (request line and
headers) must be whole within ``header_timeout`` seconds of the connection opening, or of the
previous answer; otherwise the connection is closed. The body has its own deadline
(api.core.http.RequestGuard, a 408), and an idle keep-alive connection closes after
``timeout_keep_alive`` as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.core.config import get_settings


class DeadlineHttpTools(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read here, not passed in: with --workers N each process builds its own.
        self.header_timeout = get_settings().header_timeout
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
