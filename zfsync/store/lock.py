"""One daemon per SQLite store, however the store is reached (`only_instance`)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zfsync.domain.errors import ZfsyncError


@contextmanager
def only_instance(store_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the store while the daemon runs: two daemons on one store would both send
    every message. The lock is on the database file itself (its inode), so a second config that reaches it
    through a symlink, another directory path or a rename is refused too; the holder's pid is kept in a
    file beside the resolved path, for the refusal to name. The kernel drops the lock when the process
    dies, however it dies. (An flock is apart from SQLite's own POSIX locks; on NFS, which SQLite does not
    support anyway, the two may collide.)"""
    real = store_path.resolve()
    real.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        database = os.open(real, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        message = f"store {store_path} cannot be opened: {exc.strerror}: set store.path to a writable file"
        raise ZfsyncError(message) from None
    pid_path = real.with_name(real.name + ".lock")
    try:
        try:
            fcntl.flock(database, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(pid_path)
            shown = f"{store_path}" + (f" (that is {real})" if real != store_path.absolute() else "")
            raise ZfsyncError(
                f"another zfsync daemon (pid {holder}) is running on store {shown}: stop it first"
            ) from None
        with pid_path.open("w") as pid_file:
            pid_file.write(str(os.getpid()))
        yield
    finally:
        os.close(database)  # last: the store's own connections are closed by then


def _read_pid(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"
