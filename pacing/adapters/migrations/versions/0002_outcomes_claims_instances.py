"""Submission outcomes on done marks; claim owners and fencing tokens on reminders; the
instances that run reminders; shared settings (the feed secret).

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("done_mark", sa.Column("note", sa.Text))
    op.add_column("done_mark", sa.Column("outcome", sa.String(32)))
    op.add_column("done_mark", sa.Column("outcome_on", sa.Date))
    op.add_column("reminder", sa.Column("claimed_by", sa.String(64)))
    op.add_column("reminder", sa.Column("fence", sa.BigInteger))
    op.create_table(
        "instance",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("last_step_at", sa.DateTime),
        sa.Column("last_ok_at", sa.DateTime),
        sa.Column("last_error", sa.Text),
    )
    op.create_table(
        "setting",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("setting")
    op.drop_table("instance")
    for table, column in (("reminder", "fence"), ("reminder", "claimed_by"),
                          ("done_mark", "outcome_on"), ("done_mark", "outcome"),
                          ("done_mark", "note")):  # fmt: skip
        op.drop_column(table, column)
