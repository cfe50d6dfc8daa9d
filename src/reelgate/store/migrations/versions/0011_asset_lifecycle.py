"""Stored media lifetimes: when a result expires, and a mark for objects released but perhaps not yet removed.

``expires_at`` (Unix seconds) is set for generated results, whose names carry the same time (``/assets`` answers
410 from then on); other media live as long as their element or task says. ``released_at`` is set in the
transaction that decides an object goes (nothing needs it, no live task names it); the object is removed after
that commit, then the row. A process that dies in between leaves the mark, and the next sweep finishes the job.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns without a default: added in place on both engines (no table rebuild on SQLite).
    op.add_column("assets", sa.Column("expires_at", sa.Float(precision=53), nullable=True))
    op.add_column("assets", sa.Column("released_at", sa.Float(precision=53), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("released_at")
        batch.drop_column("expires_at")
