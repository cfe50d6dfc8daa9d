"""Elements keep their creation time to the microsecond, so listings are newest first within a second too.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("elements") as batch:
        batch.add_column(sa.Column("created_at", sa.Float(precision=53), nullable=False, server_default="0"))
    op.execute("UPDATE elements SET created_at = created")
    op.create_index("elements_by_account_time", "elements", ["account_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("elements_by_account_time", table_name="elements")
    with op.batch_alter_table("elements") as batch:
        batch.drop_column("created_at")
