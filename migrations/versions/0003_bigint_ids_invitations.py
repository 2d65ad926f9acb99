"""64-bit ids and steps on PostgreSQL; team invitations; handed-over tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Columns that were 32-bit on PostgreSQL although the API accepts ids and steps up to 2**62.
# SQLite's INTEGER is 64-bit already, so there this part changes nothing.
WIDENED = {
    "user": ["id"],
    "team": ["id"],
    "membership": ["team_id", "user_id"],
    "api_token": ["id", "user_id", "run_id"],
    "project": ["id", "team_id"],
    "run": ["id", "project_id", "created_by_id", "revision"],
    "runtag": ["run_id"],
    "metric_point": ["run_id"],
    "metric_series": ["run_id", "count"],
    "metric_rollup": ["run_id"],
    "histogram": ["id", "run_id", "step"],
    "evaluation": ["run_id"],
    "run_event": ["id", "run_id", "step"],
}
SEQUENCES = ["user", "team", "api_token", "project", "run", "histogram", "run_event"]


def _widen(to: type[sa.types.TypeEngine]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in WIDENED.items():
        for column in columns:
            op.alter_column(table, column, type_=to(), existing_nullable=True)
    kind = "bigint" if to is sa.BigInteger else "integer"
    for table in SEQUENCES:
        op.execute(f'ALTER SEQUENCE "{table}_id_seq" AS {kind}')


def upgrade() -> None:
    _widen(sa.BigInteger)
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "invitation",
        sa.Column("id", id_type, nullable=False),
        sa.Column("team_id", id_type, nullable=False),
        sa.Column("user_name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("invited_by_id", id_type, nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["invited_by_id"], ["user.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "user_name", name="uq_invitation_team_user"),
    )
    with op.batch_alter_table("invitation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitation_user_name"), ["user_name"], unique=False)
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("handed_over", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_column("handed_over")
    with op.batch_alter_table("invitation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitation_user_name"))
    op.drop_table("invitation")
    _widen(sa.Integer)
