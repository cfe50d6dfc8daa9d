"""Index only completed tasks by model and finish time: the one query that reads this index (recent durations, for
the submit answer's estimated_time) asks for completed tasks only.

Every submit inserted an entry into the full index, with a NULL finish time no query reads; now an entry is made
when a task completes, and failed and unfinished tasks take no space in it.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COMPLETED = sa.text("status = 'completed'")


def upgrade() -> None:
    op.drop_index("tasks_finished_by_model", table_name="tasks")
    op.create_index("tasks_completed_by_model", "tasks", ["model", "finished_at"], sqlite_where=_COMPLETED,
                    postgresql_where=_COMPLETED)  # fmt: skip


def downgrade() -> None:
    op.drop_index("tasks_completed_by_model", table_name="tasks")
    op.create_index("tasks_finished_by_model", "tasks", ["model", "finished_at"])
