"""Process heartbeats: one row per running worker or dispatcher, refreshed every few seconds, removed on clean exit.

Operators (``reelgate status``, the console, ``reelgate_workers_alive``) read who is alive from ``last_seen``;
a process killed without a clean exit leaves its row, which stops counting as alive after the liveness threshold
and is deleted by the next heartbeat of any process once it is far older than that (``heartbeats_by_last_seen``).
``in_hand`` is how many tasks (or deliveries) the process holds right now, against its ``concurrency``.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "process_heartbeats",
        sa.Column("id", sa.Text, primary_key=True),  # <kind>-<host>-<pid>-<8 hex>, unique per process start
        sa.Column("kind", sa.Text, nullable=False),  # worker | dispatcher
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started", sa.Float(precision=53), nullable=False),
        sa.Column("last_seen", sa.Float(precision=53), nullable=False),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("in_hand", sa.Integer, nullable=False),
    )
    op.create_index("heartbeats_by_last_seen", "process_heartbeats", ["last_seen"])


def downgrade() -> None:
    op.drop_table("process_heartbeats")
