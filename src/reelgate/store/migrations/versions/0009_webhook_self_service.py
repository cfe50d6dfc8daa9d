"""Tenants manage their own webhooks: when the signing secret was made, callback resends, and tasks by error code.

- ``accounts.webhook_secret_created``: when the current signing secret was made by a rotation (shown with its id;
  the secret itself never is); NULL for the secret an account was made with, which dates from the account.
- ``deliveries.round_base``: attempts made before the current round. A resent delivery starts a new round of
  1/2/4 s retries (the dispatcher numbers attempts within the round) while the attempt log keeps numbering on, so
  ``one_row_per_attempt`` still holds. ``resends`` counts the rounds started by a resend.
- ``tasks_failed_by_account``: ``GET /v1/tasks?error_code=...`` reads one account's tasks with that code newest
  first from this index and stops at the page's end; without it, it read every task of the account (through
  ``tasks_by_account``) to find the few that failed so. Only tasks with an error code have an entry, so a submit
  adds none.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TIME = sa.Float(precision=53)
_HAS_CODE = sa.text("error_code IS NOT NULL")


def upgrade() -> None:
    op.add_column("accounts", sa.Column("webhook_secret_created", TIME, nullable=True))
    op.add_column("deliveries", sa.Column("round_base", sa.Integer, nullable=False, server_default="0"))
    op.add_column("deliveries", sa.Column("resends", sa.Integer, nullable=False, server_default="0"))
    op.create_index("tasks_failed_by_account", "tasks", ["account_id", "error_code", "created_at", "id"],
                    sqlite_where=_HAS_CODE, postgresql_where=_HAS_CODE)  # fmt: skip


def downgrade() -> None:
    op.drop_index("tasks_failed_by_account", table_name="tasks")
    for column in ("resends", "round_base"):
        op.drop_column("deliveries", column)
    op.drop_column("accounts", "webhook_secret_created")
