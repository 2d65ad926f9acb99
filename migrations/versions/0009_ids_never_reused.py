"""ids never reused (SQLite AUTOINCREMENT), a session's origin token, an invitation's account,
a run's storage estimate

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 22:30:00

SQLite hands out the largest rowid + 1, so deleting the newest run gave its id to the next
run, and a client, cache or stream holding the old id reached another team's row. AUTOINCREMENT
never goes back; SQLite can only add it by rebuilding the table (batch mode copies the rows,
and the sequence starts after the largest id kept). PostgreSQL's sequences never go back.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Parents first: a rebuilt table's foreign keys name tables that exist.
ID_TABLES = (
    "user",
    "team",
    "project",
    "study",
    "run",
    "run_event",
    "histogram",
    "api_token",
    "invitation",
)


def _batch(table: str, autoincrement: bool) -> Any:
    if op.get_bind().dialect.name != "sqlite":
        return op.batch_alter_table(table)
    return op.batch_alter_table(
        table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    )


def upgrade() -> None:
    for table in ID_TABLES:
        with _batch(table, True) as batch_op:
            if table == "api_token":
                batch_op.add_column(
                    sa.Column(
                        "parent_id",
                        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                        nullable=True,
                    )
                )
                batch_op.create_foreign_key(
                    "fk_api_token_parent_id", "api_token", ["parent_id"], ["id"], ondelete="CASCADE"
                )
            elif table == "invitation":
                batch_op.add_column(
                    sa.Column(
                        "user_id",
                        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                        nullable=True,
                    )
                )
                batch_op.create_foreign_key(
                    "fk_invitation_user_id", "user", ["user_id"], ["id"], ondelete="CASCADE"
                )
            elif table == "run":
                batch_op.add_column(
                    sa.Column("storage_bytes", sa.BigInteger(), server_default="0", nullable=False)
                )


def downgrade() -> None:
    for table in reversed(ID_TABLES):
        with _batch(table, False) as batch_op:
            if table == "api_token":
                batch_op.drop_constraint("fk_api_token_parent_id", type_="foreignkey")
                batch_op.drop_column("parent_id")
            elif table == "invitation":
                batch_op.drop_constraint("fk_invitation_user_id", type_="foreignkey")
                batch_op.drop_column("user_id")
            elif table == "run":
                batch_op.drop_column("storage_bytes")
