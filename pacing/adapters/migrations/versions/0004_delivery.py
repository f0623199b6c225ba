"""Delivery: how often a person gets email (each | daily | weekly), chosen from an email's link
or by an operator (`pacing db delivery`); it applies to every LEA the address gets email from.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery",
        sa.Column("address", sa.String(254), primary_key=True),  # lower case
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("since", sa.DateTime, nullable=False),  # naive UTC
    )


def downgrade() -> None:
    op.drop_table("delivery")
