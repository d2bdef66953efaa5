"""Where the lead store lives, and opening it: an engine whose schema is at the newest revision.

The store is `LEADREADY_DATABASE_URL` when set (PostgreSQL: `postgresql+psycopg://USER@HOST/DB`,
psycopg 3; a bare `postgresql://` means the same), else SQLite at `<models dir>/leads.db`.
SQLite runs in WAL mode, so readers never block the one writer, with a busy timeout for other
writers and foreign keys enforced.

Opening a store migrates it to the newest Alembic revision shipped in `migrations/`, so no one
runs a migration command. Processes opening one store at once take turns: a lock file beside a
SQLite database, an advisory lock in PostgreSQL (held until the migration commits); whoever
comes second finds the schema up to date and changes nothing.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from leadready.features.leadstore.tables import VERSION_TABLE

DATABASE_URL_ENV = "LEADREADY_DATABASE_URL"
DATABASE_FILE = "leads.db"
BUSY_SECONDS = 5.0
"""How long a SQLite write waits for another connection's lock before it fails."""
MIGRATIONS = Path(__file__).with_name("migrations")
PG_LOCK_KEY = 0x6C65_6164_7374_6F72  # "leadstor": the advisory lock of the store's migrations
URL_FORMS = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"


class StoreError(Exception):
    """The lead store cannot be opened or written; the message says why, for a person."""


def default_url(models_dir: Path) -> str:
    return f"sqlite:///{(models_dir / DATABASE_FILE).resolve()}"


def database_url(
    models_dir: Path, url: str | None = None, environ: Mapping[str, str] = os.environ
) -> str:
    """The store's URL: `url`, else LEADREADY_DATABASE_URL, else SQLite in `models_dir`. A bare
    `postgresql://` (or `postgres://`) URL gets psycopg 3, the driver leadready installs."""
    chosen = url or environ.get(DATABASE_URL_ENV) or default_url(models_dir)
    for bare in ("postgresql://", "postgres://"):
        if chosen.startswith(bare):
            return "postgresql+psycopg://" + chosen.removeprefix(bare)
    return chosen


def shown(url: str) -> str:
    """The URL as messages show it: without its password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def create_store_engine(url: str) -> sa.Engine:
    """An engine on the store, not yet migrated (`open_store` is the one to call)."""
    try:
        parsed = sa.make_url(url)
        is_sqlite = parsed.get_backend_name() == "sqlite"
        if is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed,
            connect_args={"timeout": BUSY_SECONDS} if is_sqlite else {},
            json_serializer=json_text,
            json_deserializer=orjson.loads,
        )
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise StoreError(
            f"{shown(url)}: not a database URL leadready can open ({exc}); expected {URL_FORMS}"
        ) from None
    if is_sqlite:
        sa.event.listen(engine, "connect", _sqlite_settings)
    return engine


def json_text(value: Any) -> str:
    """A JSON column's text, by orjson: a rescore writes a lead's reasons, context and model
    and the outbox's bodies, and `json.dumps` of them was a tenth of an ingest call's time."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _sqlite_settings(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def open_store(url: str) -> sa.Engine:
    """An engine on the store at `url`, its schema migrated to the newest revision; a
    `StoreError` when it cannot be reached or was migrated by a newer leadready."""
    engine = create_store_engine(url)
    try:
        migrate(engine)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise StoreError(f"cannot open the lead store at {shown(url)}: {_reason(exc)}") from None
    except CommandError as exc:
        engine.dispose()
        raise StoreError(
            f"the lead store at {shown(url)} has a schema this leadready does not know ({exc}); "
            "it was probably written by a newer leadready: upgrade leadready"
        ) from None
    return engine


def open_existing_store(url: str) -> sa.Engine:
    """`open_store` for commands that only read or change what a store holds: a SQLite file
    that does not exist is a `StoreError`, not a new empty store."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        parsed = None  # open_store says what is wrong with it
    if (
        parsed is not None
        and parsed.get_backend_name() == "sqlite"
        and parsed.database not in (None, "", ":memory:")
        and not Path(str(parsed.database)).exists()
    ):
        raise StoreError(
            f"no lead store at {shown(url)}; give --database-url or --models-dir, or create one "
            "with `leadready store load --data DIR`"
        )
    return open_store(url)


def _reason(exc: sa.exc.DBAPIError) -> str:
    """The driver's own message, first line: SQLAlchemy's adds the SQL and a link."""
    return (
        str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
    )


def alembic_config() -> Config:
    """Alembic's configuration for the store, without an alembic.ini."""
    config = Config()
    config.set_main_option("path_separator", "os")
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_locations", str(MIGRATIONS / "versions"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: sa.Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def migrate(engine: sa.Engine) -> None:
    """Bring the store's schema to the newest revision, taking turns with other processes."""
    head = head_revision()
    with engine.connect() as connection:
        if current_revision(connection) == head:
            return
    with _sqlite_lock(engine):
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(PG_LOCK_KEY)))
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")


@contextmanager
def _sqlite_lock(engine: sa.Engine) -> Iterator[None]:
    """An exclusive lock on `<database>.lock` while a SQLite store migrates (nothing for other
    databases, which lock inside the migration's transaction)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    fd = os.open(f"{database}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
