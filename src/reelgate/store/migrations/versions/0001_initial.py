"""Initial schema: accounts, keys, ledger, tasks, idempotency, elements, deliveries and attempts.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite needs INTEGER for rowid aliases
TIME = sa.Float(precision=53)  # epoch seconds: DOUBLE PRECISION on PostgreSQL, REAL on SQLite


def _accounts() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", BIG, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("user_group", sa.Text, nullable=False, server_default="default"),
        sa.Column("available", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("reserved", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("captured", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("in_flight", sa.Integer, nullable=False, server_default="0"),
        sa.Column("max_in_flight", sa.Integer, nullable=True),
        sa.Column("rate_limit_per_minute", sa.Integer, nullable=True),
        sa.Column("webhook_secret", sa.Text, nullable=False),
        sa.Column("created", TIME, nullable=False),
        sa.CheckConstraint("available >= 0 AND reserved >= 0 AND captured >= 0", name="credits_never_negative"),
        sa.CheckConstraint("in_flight >= 0", name="in_flight_never_negative"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", BIG, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("key_hash", sa.Text, nullable=False, unique=True),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("created", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.Column("expires_at", TIME, nullable=True),
    )
    op.create_table(
        "ledger",
        sa.Column("id", BIG, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("task_id", sa.Text, nullable=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("created", TIME, nullable=False),
        # One reserve, at most one capture and one release per task: "settled once" is a database fact.
        sa.UniqueConstraint("task_id", "kind", name="ledger_once_per_task"),
    )
    op.create_index("ledger_by_account", "ledger", ["account_id", "id"])


def _tasks() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("api_key_id", sa.BigInteger, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("progress", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cancellable", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("finished_at", TIME, nullable=True),
        sa.Column("deadline", TIME, nullable=False),
        sa.Column("run_after", TIME, nullable=False),
        sa.Column("lease_owner", sa.Text, nullable=True),
        sa.Column("lease_expires", TIME, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="{}"),
        sa.Column("callback_url", sa.Text, nullable=True),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("user_group", sa.Text, nullable=False),
        sa.Column("billing_rule", sa.Text, nullable=False),
        sa.Column("estimated_time", sa.Integer, nullable=False),
        sa.Column("charged", sa.BigInteger, nullable=True),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("error_code", sa.Text, nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.CheckConstraint("progress >= 0 AND progress <= 100", name="progress_in_range"),
    )
    op.create_index("tasks_due", "tasks", ["status", "run_after"])
    op.create_index("tasks_by_account", "tasks", ["account_id", "created_at", "id"])
    op.create_index("tasks_finished_by_model", "tasks", ["model", "finished_at"])
    op.create_table(
        "idempotency",
        sa.Column("api_key_id", sa.BigInteger, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("body_hash", sa.Text, nullable=False),
        sa.Column("task_id", sa.Text, nullable=False),
        sa.Column("created", TIME, nullable=False),
        sa.PrimaryKeyConstraint("api_key_id", "key"),
    )
    op.create_index("idempotency_by_age", "idempotency", ["created"])


def _elements_and_deliveries() -> None:
    op.create_table(
        "elements",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("task_id", sa.Text, nullable=False, unique=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("upstream_id", sa.Text, nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("deleted_at", TIME, nullable=True),
        sa.Column("upstream_deleted", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("elements_by_account", "elements", ["account_id", "created", "id"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Text, primary_key=True),  # the webhook-id, stable across retries
        sa.Column("task_id", sa.Text, nullable=False, unique=True),
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt", TIME, nullable=False),
        sa.Column("lease_owner", sa.Text, nullable=True),
        sa.Column("lease_expires", TIME, nullable=True),
        sa.Column("created", TIME, nullable=False),
        sa.Column("finished_at", TIME, nullable=True),
    )
    op.create_index("deliveries_due", "deliveries", ["status", "next_attempt"])
    op.create_table(
        "delivery_attempts",
        sa.Column("id", BIG, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("next_attempt", TIME, nullable=True),
        sa.UniqueConstraint("delivery_id", "attempt", name="one_row_per_attempt"),
    )


def upgrade() -> None:
    _accounts()
    _tasks()
    _elements_and_deliveries()


def downgrade() -> None:
    for table in (
        "delivery_attempts",
        "deliveries",
        "elements",
        "idempotency",
        "tasks",
        "ledger",
        "api_keys",
    ):
        op.drop_table(table)
    op.drop_table("accounts")
