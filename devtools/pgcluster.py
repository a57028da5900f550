"""A throwaway PostgreSQL cluster for the tests and the crash test: initdb and pg_ctl in a temporary
directory, on a loopback port, with a password (so the password path of `store.url` is the one tested).

PostgreSQL refuses to run as root; under root (CI) the cluster runs as the unprivileged ``nobody``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "zfsync"
PASSWORD = "throwaway-test-password"


def find_bin_dir() -> Path | None:
    """Where Debian (or the PATH) keeps initdb and pg_ctl, or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


class Unavailable(Exception):
    """PostgreSQL cannot be had on this machine; the message says why."""


class Cluster:
    def __init__(self) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise Unavailable("PostgreSQL's initdb is not installed (Debian: apt-get install postgresql)")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise Unavailable("the psycopg driver is missing: pip install 'zfsync[postgres]'") from None
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="zfsync-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.host = "127.0.0.1"
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "nobody", "--"]
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
        password_file = self.root / "pw"
        password_file.write_text(PASSWORD + "\n")
        if self._as:
            os.chown(password_file, pwd.getpwnam("nobody").pw_uid, -1)
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, "--auth=scram-sha-256", f"--pwfile={password_file}",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        password_file.unlink()
        options = (
            f"-c listen_addresses={self.host} -p {self.port} -k {self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [*self._as, str(self.bin / program), *args], capture_output=True, text=True, check=False, cwd=self.root
        )
        if result.returncode != 0:
            raise Unavailable(f"{program} failed: {(result.stderr or result.stdout).strip().splitlines()[-1:]}")

    def url(self, database: str = "postgres") -> str:
        """The URL zfsync is given: no password in it (that comes from ZFSYNC_STORE_PASSWORD)."""
        return f"postgresql://{USER}@{self.host}:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user=USER, password=PASSWORD, dbname=database, autocommit=True
        ) as connection:
            cursor = connection.execute(statement.encode())
            return list(cursor.fetchall()) if cursor.description else []

    def create_database(self, name: str) -> str:
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.data.exists():
            self._as_quiet("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def _as_quiet(self, program: str, *args: str) -> None:
        subprocess.run([*self._as, str(self.bin / program), *args], capture_output=True, check=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
