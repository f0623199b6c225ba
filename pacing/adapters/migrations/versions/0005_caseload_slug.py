"""Caseload slugs: the slug of each caseload email, given the first time the email is seen and
kept, so a contact's name spelled another way never moves its URLs, token or opt-outs.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "caseload_slug",
        sa.Column("email", sa.String(254), primary_key=True),  # lower case
        sa.Column("slug", sa.String(80), nullable=False, unique=True),
        sa.Column("since", sa.DateTime, nullable=False),  # naive UTC
    )


def downgrade() -> None:
    op.drop_table("caseload_slug")
