"""thresholds stored with each embedding model (verification, grouping, recognition)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The library is backed up before any migration runs (engine/store/library.py).
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verify_threshold", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("cluster_threshold", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("recognise_threshold", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("recognise_threshold")
        batch_op.drop_column("cluster_threshold")
        batch_op.drop_column("verify_threshold")
