"""Index live tasks by account and by lease, so a worker's claim takes accounts in turns without reading the backlog.

- ``tasks_claimable``: live (pending or processing) tasks by account and due time. The claim walks the accounts
  that have live tasks one index step each (a loose index scan) and reads each one's oldest few due tasks; an
  account's tasks that are not due yet (thousands of Kling tasks between two polls) lie past the range it reads.
- ``tasks_leased``: live tasks under a lease, by its expiry. The claim counts each account's tasks under a live
  lease (held by any worker) to place it in the turns; only leases that have not run out are read, as many as the
  workers hold. A task between two runs (no lease) has no entry: with one, PostgreSQL without statistics yet
  combined it with the primary key to re-check a claim's few tasks and read every waiting task.

Only live tasks have an entry in either: a finished task leaves them, and the millions of finished tasks of a long
life are never in their way. The queries name the same ``status IN ('pending', 'processing')`` as the indexes,
which both engines need to use a partial index (a comparison on ``lease_expires`` implies it is not null).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_LIVE = sa.text("status IN ('pending', 'processing')")
_LEASED = sa.text("status IN ('pending', 'processing') AND lease_expires IS NOT NULL")


def upgrade() -> None:
    op.create_index("tasks_claimable", "tasks", ["account_id", "run_after"], sqlite_where=_LIVE,
                    postgresql_where=_LIVE)  # fmt: skip
    op.create_index("tasks_leased", "tasks", ["lease_expires", "account_id"], sqlite_where=_LEASED,
                    postgresql_where=_LEASED)  # fmt: skip


def downgrade() -> None:
    op.drop_index("tasks_leased", table_name="tasks")
    op.drop_index("tasks_claimable", table_name="tasks")
