"""A throwaway PostgreSQL server: initdb in a temp dir, one free loopback port."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg

from localservers.binaries import require
from localservers.ports import free_port
from localservers.process import ServerProcess

# PostgreSQL refuses to run as root; as root we run it as this (Debian-created) user.
_UNPRIVILEGED_USER = "postgres"


class PostgresServer:
    """A real PostgreSQL server with trust auth on 127.0.0.1 (tests and local runs only)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base_dir = Path(tempfile.mkdtemp(prefix="localpg-"))
        self.data_dir = self.base_dir / "data"
        self._as_user = _drop_privileges() if os.geteuid() == 0 else None
        if self._as_user is not None:
            uid, gid = _user_ids()
            os.chown(self.base_dir, uid, gid)
        self._process: ServerProcess | None = None

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs (its backends are its children)."""
        return self._process.pid if self._process is not None else None

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def libpq_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        subprocess.run(
            [
                str(require("initdb")),
                "--pgdata",
                str(self.data_dir),
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            preexec_fn=self._as_user,
        )

    def start(self, timeout: float = 30.0) -> None:
        if not self.data_dir.exists():
            self.init()
        self._process = ServerProcess(
            [
                str(require("postgres")),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-k",
                str(self.base_dir),
                "-c",
                "listen_addresses=127.0.0.1",
                # Test servers trade crash safety for speed; restarts are clean shutdowns.
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ],
            self.base_dir / "postgres.log",
            preexec_fn=self._as_user,
            stop_signal=2,  # SIGINT: fast shutdown, disconnects clients
        )
        self._process.start()
        self._process.wait_until(self._accepts_connections, timeout, "PostgreSQL")

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        return self._process is not None and self._process.running()

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.libpq_dsn(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def _accepts_connections(self) -> bool:
        with psycopg.connect(self.libpq_dsn(), connect_timeout=2):
            return True


def _user_ids() -> tuple[int, int]:
    entry = pwd.getpwnam(_UNPRIVILEGED_USER)
    return entry.pw_uid, entry.pw_gid


def _drop_privileges() -> Callable[[], None]:
    uid, gid = _user_ids()

    def demote() -> None:
        os.setgid(gid)
        os.setuid(uid)

    return demote
