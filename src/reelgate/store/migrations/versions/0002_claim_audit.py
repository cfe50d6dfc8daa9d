"""Claim audit: every lease taken on a task, with the lease it replaced (lease takeovers are visible).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_claims",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("claimed_at", sa.Float(precision=53), nullable=False),
        sa.Column("previous_owner", sa.Text, nullable=True),
        sa.Column("previous_lease_expires", sa.Float(precision=53), nullable=True),
    )
    op.create_index("task_claims_by_task", "task_claims", ["task_id", "id"])


def downgrade() -> None:
    op.drop_table("task_claims")
