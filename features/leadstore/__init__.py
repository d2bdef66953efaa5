"""The lead store: leads, their events, outcomes, scores and webhook deliveries in a real
database (SQLite under the models folder by default, PostgreSQL by URL), shared by both sides.

`tables` describes the tables (SQLAlchemy 2 Core), `database` opens a store and brings its
schema to the newest Alembic revision (`migrations/`), `loading` writes a validated CRM export
into it and `reading` reads it back as the same `Crm` that `load_crm` gives. docs/store.md is
the human-readable version.
"""
