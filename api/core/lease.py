"""Leases in the database: what must happen once however many API processes serve (the reaper
and the queue's reconciliation) is done by whichever process holds the lease. A holder renews
it on each pass; if it dies, another takes it over once it has expired. Not "only process 0":
processes on other machines, and a restarted one, share it too."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import Engine, bindparam, or_, update
from sqlmodel import Field, SQLModel, col

from api.core.db import utcnow


class Lease(SQLModel, table=True):
    name: str = Field(primary_key=True, max_length=40)
    holder: str = Field(default="", max_length=200)
    expires_at: datetime


class LeaseHolder:
    def __init__(self, engine: Engine, name: str, ttl: float) -> None:
        self.engine, self.name, self.ttl = engine, name, ttl
        self.me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def hold(self) -> bool:
        """Take or renew the lease; True while this process holds it."""
        now = utcnow()
        with self.engine.begin() as conn:
            taken = conn.execute(
                _TAKE,
                {
                    "lease": self.name,
                    "me": self.me,
                    "now": now,
                    "until": now + timedelta(seconds=self.ttl),
                },
            )
        return taken.rowcount == 1

    def release(self) -> None:
        """Let another process take it at once (a clean shutdown)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(Lease)
                .where(col(Lease.name) == self.name, col(Lease.holder) == self.me)
                .values(holder="", expires_at=utcnow() - timedelta(seconds=1))
            )


_TAKE = (
    update(Lease)
    .where(
        col(Lease.name) == bindparam("lease"),
        or_(col(Lease.holder) == bindparam("me"), col(Lease.expires_at) < bindparam("now")),
    )
    .values(holder=bindparam("me"), expires_at=bindparam("until"))
)
