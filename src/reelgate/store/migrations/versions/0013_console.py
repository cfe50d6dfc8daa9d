"""The operator web console: its operators (admins), their sign-in sessions, the audit log, and one index for its
overview.

- ``console_admins``: an operator who may sign in to ``/console``; ``password_hash`` is an Argon2id hash (the
  password itself is never stored); ``disabled_at`` set: may no longer sign in, and every session of theirs ends.
- ``console_sessions``: one row per signed-in browser, keyed by the SHA-256 of the cookie's random token (a copy of
  the table gives nobody a session); ``csrf`` is the token every form of that session must carry. Stored rather
  than signed into the cookie so sign-out and disabling an operator end it at once, in every API process.
- ``console_audit``: every operator action (sign-ins, failed ones too, grants, keys, limits, secrets, cancels,
  resends, admins made or disabled from the command line), newest read first.
- ``tasks_finished``: tasks by finish time, only those that finished (a submit adds no entry), so the overview's
  last hour and day (tasks per minute, times to complete, failures by code) read only that window.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite needs INTEGER for rowid aliases
TIME = sa.Float(precision=53)
_FINISHED = sa.text("finished_at IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "console_admins",
        sa.Column("id", BIG, primary_key=True, autoincrement=True),
        sa.Column("username", sa.Text, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created", TIME, nullable=False),
        sa.Column("disabled_at", TIME, nullable=True),
        sa.Column("last_sign_in", TIME, nullable=True),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("admin_id", sa.BigInteger, sa.ForeignKey("console_admins.id"), nullable=False),
        sa.Column("csrf", sa.Text, nullable=False),
        sa.Column("created", TIME, nullable=False),
        sa.Column("expires", TIME, nullable=False),
        sa.Column("ip", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("console_sessions_by_admin", "console_sessions", ["admin_id"])
    op.create_index("console_sessions_by_expiry", "console_sessions", ["expires"])
    op.create_table(
        "console_audit",
        sa.Column("id", BIG, primary_key=True, autoincrement=True),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),  # the operator's username, or "cli" for the command line
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False, server_default=""),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("ip", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("console_audit_by_target", "console_audit", ["target", "id"])
    op.create_index("tasks_finished", "tasks", ["finished_at"], sqlite_where=_FINISHED, postgresql_where=_FINISHED)


def downgrade() -> None:
    op.drop_index("tasks_finished", table_name="tasks")
    op.drop_table("console_audit")
    op.drop_table("console_sessions")
    op.drop_table("console_admins")
