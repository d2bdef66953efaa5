"""A real PostgreSQL server for the tests, started in a temporary folder and stopped at the end:
Debian's `postgresql` binaries (`.ci/run` installs them when missing), trust authentication on
a free loopback port, its unix socket in the same folder, and durability switched off (fsync)
since the data is thrown away. PostgreSQL refuses to run as root, so under root (as CI runs) the
server runs as the `postgres` user, or `nobody`, through runuser."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "leadready"


class Unavailable(Exception):
    """No PostgreSQL server can be started here; the message says why and what to install."""


def bin_dir() -> Path:
    """The folder of initdb and pg_ctl: pg_config's, Debian's newest /usr/lib/postgresql/N/bin,
    or wherever PATH finds initdb."""
    candidates = []
    if pg_config := shutil.which("pg_config"):
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidates.append(Path(found.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versions, key=lambda p: int(Path(p).parent.name))[::-1]]
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise Unavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) found: install Debian's postgresql "
        "package (apt-get install -y postgresql; .ci/run does this)"
    )


def run_as() -> list[str]:
    """The command prefix that runs a server program: none, or runuser to a non-root user."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        if runuser := shutil.which("runuser"):
            return [runuser, "-u", name, "--"]
    raise Unavailable("running as root with no postgres or nobody user (or no runuser) to run it")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    folder: Path
    port: int
    prefix: list[str]
    bin: Path

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, folder: Path, durable: bool = False) -> PostgresServer:
        folder.mkdir(parents=True, exist_ok=True)
        prefix, programs = run_as(), bin_dir()
        if prefix:
            user = prefix[2]
            shutil.chown(folder, user)
            # The user must reach the folder through its parents (pytest's are 0700 for root).
            for parent in folder.parents:
                if parent == Path(parent.anchor) or parent.stat().st_mode & 0o001:
                    break
                parent.chmod(parent.stat().st_mode | 0o001)
        data = folder / "data"
        subprocess.run(
            [
                *prefix,
                str(programs / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
        )
        port = free_port()
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        started = subprocess.run(
            [
                *prefix,
                str(programs / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(folder / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            capture_output=True,
            text=True,
        )
        if started.returncode != 0:
            log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stdout}{started.stderr}{log}")
        return cls(folder, port, prefix, programs)

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            [
                *self.prefix,
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.folder / "data"),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            capture_output=True,
        )
