"""The schema of pacing 0.1 (the first release): feed revisions, done marks, the reminder
ledger, the plan-change counter. Stores made by that release are stamped with this revision.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_revision",
        sa.Column("calendar", sa.String(200), primary_key=True),
        sa.Column("uid", sa.String(300), primary_key=True),
        sa.Column("dates_digest", sa.String(64), nullable=False),
        sa.Column("content_digest", sa.String(64), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("modified", sa.String(32), nullable=False),
    )
    op.create_table(
        "done_mark",
        sa.Column("lea", sa.String(80), primary_key=True),
        sa.Column("item", sa.String(300), primary_key=True),
        sa.Column("done_on", sa.Date, nullable=False),
    )
    op.create_table(
        "reminder",
        sa.Column("key", sa.String(600), primary_key=True),
        sa.Column("lea", sa.String(80), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("item_ids", sa.Text, nullable=False),
        sa.Column("due", sa.Date, nullable=False),
        sa.Column("to_addr", sa.String(254), nullable=False),
        sa.Column("cc", sa.Text, nullable=False),
        sa.Column("send_at", sa.DateTime, nullable=False, index=True),
        sa.Column("status", sa.String(12), nullable=False, index=True),
        sa.Column("claimed_until", sa.DateTime),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_try", sa.DateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", sa.DateTime),
    )
    op.create_table(
        "plan_change",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("counter", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("plan_change", "reminder", "done_mark", "feed_revision"):
        op.drop_table(table)
