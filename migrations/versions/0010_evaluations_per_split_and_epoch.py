"""evaluations per split and epoch

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 15:40:00

A run had one evaluation (validation, at the end). It now has one per split (train, val,
test) and epoch: the final ones and those made per class while training. The old rows become
the final validation evaluations at the epoch their document names.
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "run_evaluation",
        sa.Column("run_id", BIG_ID, nullable=False),
        sa.Column("split", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "split", "epoch"),
    )
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "INSERT INTO run_evaluation (run_id, split, epoch, final, payload_json, created_at) "
            "SELECT run_id, 'val', 0, TRUE, payload_json, created_at FROM evaluation"
        )
    )
    for run_id, payload in conn.execute(sa.text("SELECT run_id, payload_json FROM evaluation")):
        epoch = json.loads(payload).get("epoch")
        if isinstance(epoch, int) and 0 <= epoch < 2**31:
            conn.execute(
                sa.text("UPDATE run_evaluation SET epoch = :e WHERE run_id = :r"),
                {"e": epoch, "r": run_id},
            )
    op.drop_table("evaluation")


def downgrade() -> None:
    op.create_table(
        "evaluation",
        sa.Column("run_id", BIG_ID, nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.execute(
        "INSERT INTO evaluation (run_id, payload_json, created_at) "
        "SELECT run_id, payload_json, created_at FROM run_evaluation "
        "WHERE split = 'val' AND final"
    )
    op.drop_table("run_evaluation")
