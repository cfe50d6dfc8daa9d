"""Stored media files and the task that stored each (an upload at submit, or the worker's copy or thumbnail).

A row is written before its file, so every file has an owner on record; files of refused submits, failed tasks
and deleted elements are found by query and removed.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("name", sa.Text, primary_key=True),  # <token>.<ext>, the file name and the URL's last part
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("task_id", sa.Text, nullable=False),  # no foreign key: the row comes before its task's row
        sa.Column("created", sa.Float(precision=53), nullable=False),
    )
    op.create_index("assets_by_task", "assets", ["task_id"])
    op.create_index("assets_by_age", "assets", ["created"])


def downgrade() -> None:
    op.drop_table("assets")
