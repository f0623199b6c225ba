"""Alembic environment: pacing runs its migrations in code (`pacing db upgrade`, and at start)
on the connection it hands over; there is no alembic.ini."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
