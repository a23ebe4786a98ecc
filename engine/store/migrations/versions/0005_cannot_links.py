"""cannot_links: the user's "no" to "same person?" between two groups, kept by every later grouping

Revision ID: 0005_cannot_links
Revises: 0004
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_cannot_links"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The library is backed up before any migration runs (LibraryStore.migrate).
    op.create_table(
        "cannot_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("faces_a", sa.JSON(), nullable=False),
        sa.Column("faces_b", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cannot_links")
