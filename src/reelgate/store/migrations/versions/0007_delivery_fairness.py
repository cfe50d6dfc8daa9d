"""Index deliveries by status and account, and by status and lease, so a fair claim reads each account's next few
deliveries and the live leases, never the whole backlog (an attacker's slow receiver can leave tens of thousands due).

Status leads, as in ``deliveries_due``: SQLite's planner, without statistics, picks the index that constrains the
most columns, and would take ``deliveries_due`` (status only) over a partial index on pending rows.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("deliveries_by_account", "deliveries", ["status", "account_id", "next_attempt"])
    op.create_index("deliveries_by_lease", "deliveries", ["status", "lease_expires", "account_id"])


def downgrade() -> None:
    op.drop_index("deliveries_by_lease", table_name="deliveries")
    op.drop_index("deliveries_by_account", table_name="deliveries")
