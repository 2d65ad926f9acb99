"""leases: what must happen once across API processes (the reconciler) is held in the database

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 14:30:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    lease = op.create_table(
        "lease",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    op.bulk_insert(lease, [{"name": "reconciler", "holder": "", "expires_at": long_ago}])


def downgrade() -> None:
    op.drop_table("lease")
