"""child-face classifier stored with each embedding model (fitted by ``facenet-photos calibrate``)

Revision ID: 0006_child_classifiers
Revises: 0005_cannot_links
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_child_classifiers"
down_revision = "0005_cannot_links"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The library is backed up before any migration runs (LibraryStore.migrate).
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("child_classifier", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("child_classifier")
