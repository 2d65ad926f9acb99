"""MLflow's page tokens: opaque to its client, here the offset of the next page."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import TypeVar

from api.core.exceptions import Invalid

T = TypeVar("T")


def page_of(items: Sequence[T], size: int, token: str) -> tuple[list[T], str | None]:
    """The page of ``items`` that ``token`` points at, and the next page's token (None at the
    end)."""
    start = offset_of(token)
    page = list(items[start : start + size])
    more = start + size < len(items)
    return page, token_for(start + size) if more else None


def token_for(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def offset_of(token: str) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise Invalid("page_token", "not a page token this server gave") from None
    if not isinstance(offset, int) or not 0 <= offset <= 2**62:
        raise Invalid("page_token", "not a page token this server gave")
    return offset
