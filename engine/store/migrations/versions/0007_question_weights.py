"""the "same person?" queue's weights stored with each embedding model (fitted by ``facenet-photos calibrate``)

Revision ID: 0007_question_weights
Revises: 0006_child_classifiers
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_question_weights"
down_revision = "0006_child_classifiers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The library is backed up before any migration runs (LibraryStore.migrate).
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("question_weights", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("question_weights")
