"""The errors the stores raise; api.core.errors turns each into its HTTP answer."""

from __future__ import annotations


class NotFound(Exception):
    """The run (or project, or thing) does not exist, or the caller may not know it does."""


class Forbidden(Exception):
    """The caller can see the thing but may not do this to it (e.g. a viewer editing)."""


class Conflict(Exception):
    """The request is valid but does not fit the run's state (e.g. metrics for a finished run)."""


class Invalid(Exception):
    """A value pydantic could not check (e.g. a bad cursor); names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TooLarge(Invalid):
    """Over a storage limit (answered 413); names the field and the limit."""


class Unauthorized(Exception):
    """No usable token: answered 401 with WWW-Authenticate: Bearer."""
