"""run diagnosis: best epoch, overfitting onset, gap, verdict

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "run_diagnosis",
        sa.Column("run_id", id_type, nullable=False),
        sa.Column("verdict", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("epochs", sa.Integer(), nullable=False),
        sa.Column("best_epoch", sa.Integer(), nullable=True),
        sa.Column("min_val_loss", sa.Float(), nullable=True),
        sa.Column("onset_epoch", sa.Integer(), nullable=True),
        sa.Column("gap_at_best", sa.Float(), nullable=True),
        sa.Column("final_gap", sa.Float(), nullable=True),
        sa.Column("gap_slope", sa.Float(), nullable=True),
        sa.Column("final_train_loss", sa.Float(), nullable=True),
        sa.Column("final_val_loss", sa.Float(), nullable=True),
        sa.Column("evaluated_epoch", sa.Integer(), nullable=True),
        sa.Column("val_accuracy", sa.Float(), nullable=True),
        sa.Column("early_stopped", sa.Boolean(), nullable=False),
        sa.Column("detail_json", sa.Text(), nullable=False),
        sa.Column("computed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index(op.f("ix_run_diagnosis_verdict"), "run_diagnosis", ["verdict"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_run_diagnosis_verdict"), table_name="run_diagnosis")
    op.drop_table("run_diagnosis")
