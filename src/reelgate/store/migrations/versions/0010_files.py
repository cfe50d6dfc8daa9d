"""Files of the file API (``/api/v1/files``): one row per uploaded file, scoped to its account, until it expires.

A row is written (``ready`` 0) before its object, so every stored object has an owner on record and counts against
the account's quota from the start; it turns ready once the object is whole. ``files_by_account`` serves the list
(newest first) and the quota's count of live files, ``files_by_expiry`` the sweep of expired and abandoned rows.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.Text, primary_key=True),  # file_<24 hex>
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text, nullable=False, unique=True),  # the stored object, the URL's last part
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("original_name", sa.Text, nullable=False),
        sa.Column("upload_path", sa.Text, nullable=False),
        sa.Column("mime_type", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created", sa.Float(precision=53), nullable=False),
        sa.Column("expires_at", sa.Float(precision=53), nullable=False),
        sa.Column("ready", sa.SmallInteger, nullable=False),  # 0 while its object is being written
    )
    op.create_index("files_by_account", "files", ["account_id", "created"])
    op.create_index("files_by_expiry", "files", ["expires_at"])


def downgrade() -> None:
    op.drop_table("files")
