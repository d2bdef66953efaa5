"""Alembic's environment for the lead store: migrations run on the connection that
`leadready.features.leadstore.database.migrate` hands over (in `config.attributes`), against the
store's own revision table, in batch mode on SQLite (whose ALTER TABLE cannot change columns)."""

from __future__ import annotations

from alembic import context

from leadready.features.leadstore.tables import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the lead store migrates itself when it is opened "
        "(leadready.features.leadstore.database.open_store); the alembic command is not used"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
