"""Opt-outs: a recipient who unsubscribed from an LEA's reminders (RFC 8058 one-click).

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "opt_out",
        sa.Column("lea", sa.String(80), primary_key=True),
        sa.Column("address", sa.String(254), primary_key=True),
        sa.Column("at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("opt_out")
