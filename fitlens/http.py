"""One HTTP session to the API: JSON calls and Server-Sent Events, the API's errors as
exceptions and its numbers as floats. Runs, studies, the logger and the client build on it;
it imports none of them."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import httpx

from fitlens.errors import FitlensError, NotFound
from fitlens.sse import frames


def number(value: Any) -> float:
    """The API's numbers as floats: "NaN", "Infinity", "-Infinity" (and null) included."""
    if isinstance(value, int | float):
        return float(value)
    if value == "Infinity":
        return math.inf
    if value == "-Infinity":
        return -math.inf
    return math.nan


def error_of(response: httpx.Response) -> FitlensError:
    try:
        body = response.json()
        message, errors = str(body.get("detail", response.reason_phrase)), body.get("errors")
    except ValueError:
        message, errors = response.text[:500] or response.reason_phrase, None
    kind = NotFound if response.status_code == 404 else FitlensError
    return kind(response.status_code, message, errors)


class Http:
    """The session: ``url`` is the API's root, every path is under ``/api/v1``."""

    def __init__(self, url: str, token: str, timeout: float = 30) -> None:
        self.url = url
        self.api = f"{url}/api/v1"
        self.http = httpx.Client(
            base_url=self.api, timeout=timeout, headers={"Authorization": f"Bearer {token}"}
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """JSON of a successful answer (None for 204); FitlensError with the API's message."""
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise error_of(response)
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def download(self, path: str) -> tuple[bytes, httpx.Headers]:
        """A file's bytes and the answer's headers; FitlensError with the API's message."""
        response = self.http.get(path)
        if response.status_code >= 400:
            raise error_of(response)
        return response.content, response.headers

    def save(self, path: str, target: Path) -> Path:
        """A download streamed into ``target`` as it arrives (an export of any length in a
        few chunks of memory); FitlensError with the API's message."""
        with self.http.stream("GET", path, timeout=None) as response:
            if response.status_code >= 400:
                response.read()
                raise error_of(response)
            with open(target, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        return target

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def events(self, path: str, last_id: str | None = None) -> Iterator[tuple[str, Any, str]]:
        """A Server-Sent Events stream: (event, data, id) as they come; ends after ``end``."""
        headers = {"Last-Event-ID": last_id} if last_id else {}
        with self.http.stream("GET", path, headers=headers, timeout=None) as response:
            if response.status_code == 204:
                return
            if response.status_code >= 400:
                response.read()
                raise error_of(response)
            for frame in frames(response.iter_lines()):
                if frame.comment is not None:
                    continue
                yield frame.event, frame.data, frame.id or ""
                if frame.event == "end":
                    return
