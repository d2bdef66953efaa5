"""Alembic's environment for the lead store (env.py) and its revisions (versions/). They run
through `leadready.features.leadstore.database.migrate`; no alembic.ini is needed."""
