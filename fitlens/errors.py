"""What the client raises: the API's own message, status and per-field errors."""

from __future__ import annotations

from typing import Any


class FitlensError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.errors = errors or []


class NotFound(FitlensError):
    """404: it does not exist, or it is not yours to see."""
