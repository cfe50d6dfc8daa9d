"""Index active tasks by deadline, so the overdue sweep reads only what is due.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("tasks_by_deadline", "tasks", ["status", "deadline"])


def downgrade() -> None:
    op.drop_index("tasks_by_deadline", table_name="tasks")
