"""queue hand-over time, run environment, divergence; non-finite histogram counts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = ("nan_count", "posinf_count", "neginf_count")


def upgrade() -> None:
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("enqueued_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("environment_json", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("diverged_epoch", sa.Integer(), nullable=True))
    with op.batch_alter_table("histogram", schema=None) as batch_op:
        for name in COUNTS:
            batch_op.add_column(sa.Column(name, id_type, server_default="0", nullable=False))
    # Runs queued before this version were handed over when they were created.
    op.execute("UPDATE run SET enqueued_at = created_at WHERE status = 'queued'")


def downgrade() -> None:
    with op.batch_alter_table("histogram", schema=None) as batch_op:
        for name in COUNTS:
            batch_op.drop_column(name)
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("diverged_epoch")
        batch_op.drop_column("environment_json")
        batch_op.drop_column("enqueued_at")
