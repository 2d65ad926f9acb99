"""studies: a study table; runs name the study, configuration and replicate they belong to

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "study",
        sa.Column("id", id_type, nullable=False),
        sa.Column("project_id", id_type, nullable=False),
        sa.Column("created_by_id", id_type, nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("design_json", sa.Text(), nullable=False),
        sa.Column("configs_json", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("revision", id_type, nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_study_created_at"), "study", ["created_at"], unique=False)
    op.create_index(op.f("ix_study_project_id"), "study", ["project_id"], unique=False)
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("study_id", id_type, nullable=True))
        batch_op.add_column(sa.Column("study_config", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("study_replicate", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("overrides_json", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_run_study_id"), ["study_id"], unique=False)
        batch_op.create_foreign_key("fk_run_study_id_study", "study", ["study_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_constraint("fk_run_study_id_study", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_run_study_id"))
        batch_op.drop_column("overrides_json")
        batch_op.drop_column("study_replicate")
        batch_op.drop_column("study_config")
        batch_op.drop_column("study_id")
    op.drop_index(op.f("ix_study_project_id"), table_name="study")
    op.drop_index(op.f("ix_study_created_at"), table_name="study")
    op.drop_table("study")
