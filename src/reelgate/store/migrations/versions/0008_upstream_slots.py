"""Upstream slots: one row per task in flight at a vendor account ("channel"), so a cap on a channel's tasks in
flight holds across every worker process and machine (Kling counts concurrency per account and answers 1303).

A task asking for a place when none is free waits in line (``held`` 0, ``acquired_at`` when it started waiting), so
places go to the longest-waiting tasks first; a place is taken right before the upstream create (``held`` 1), in a
transaction that counts the channel's rows, and the row goes when the upstream task reaches a final status or the
task ends; rows of ended tasks are swept by the next taker.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstream_slots",
        sa.Column("task_id", sa.Text, primary_key=True),  # one upstream task in flight per task at a time
        sa.Column("channel", sa.Text, nullable=False),  # <provider>:<channel name>
        sa.Column("acquired_at", sa.Float(precision=53), nullable=False),
        sa.Column("held", sa.SmallInteger, nullable=False),  # 1: in flight upstream; 0: waiting for a place
    )
    op.create_index("upstream_slots_by_channel", "upstream_slots", ["channel", "held", "acquired_at"])


def downgrade() -> None:
    op.drop_table("upstream_slots")
