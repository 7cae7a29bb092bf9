"""Backups of a SQLite database (the embedded mode) and their restore.

A backup is taken with SQLite's online backup API in one step: it copies one
consistent snapshot while the database is in use (in WAL mode the writers go on).
The database's key file (tables.secrets_at_rest) is copied beside it: the secrets in
the database cannot be read without it.

"In use" means a long-running tenure process serves the database: `tenure demo`,
`web`, `worker` and `scheduler` hold a shared lock (flock) on the database file for
their whole life, and a restore needs the exclusive one. (SQLite's own locks cannot
tell: the processes open a connection per query.)
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tables.secrets_at_rest import KEY_FILE_SUFFIX

REQUIRED_TABLES = ("migration", "operations", "ledger_entries")


class BackupProblem(RuntimeError):
    """The backup or restore cannot be done; the message says why and what to do."""


class DatabaseInUse(BackupProblem):
    pass


@dataclass
class Copied:
    database: Path
    key_file: Path | None
    bytes: int
    kept: list[Path]


def key_file_of(database: Path) -> Path:
    return database.with_name(database.name + KEY_FILE_SUFFIX)


_held: list[int] = []


def hold(database: Path) -> None:
    """Marks the database in use by this process (and the programs it execs) until it exits."""
    database.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(database, os.O_RDONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    os.set_inheritable(fd, True)  # `tenure worker` execs Dramatiq, which forks its workers
    _held.append(fd)


def _exclusive(database: Path) -> int | None:
    """An fd holding the database's exclusive lock, or None if some process serves it."""
    fd = os.open(database, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def check_database(path: Path) -> None:
    """Raises BackupProblem unless `path` is a sound SQLite file holding tenure's tables."""
    if not path.is_file():
        raise BackupProblem(f"{path} does not exist")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupProblem(f"{path} is not a SQLite database: {exc}") from None
    if verdict != "ok":
        raise BackupProblem(f"{path} is damaged: {verdict}")
    missing = [name for name in REQUIRED_TABLES if name not in names]
    if missing:
        raise BackupProblem(f"{path} is not a tenure database (no {', '.join(missing)} table)")


def _copy_database(source: Path, target: Path) -> None:
    """Copies `source` to `target` (a new file) with SQLite's online backup API, in one step."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # pages=-1: one consistent snapshot, while others go on writing
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        finally:
            dst.close()
    finally:
        src.close()


def _copy_key(source: Path, target: Path) -> None:
    draft = target.with_name(f".{target.name}.part")
    draft.unlink(missing_ok=True)
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(source.read_text())
    os.replace(draft, target)


def backup(database: Path, to: Path, *, overwrite: bool = False, with_key: bool = True) -> Copied:
    """Copies the live database (and, `with_key`, its key file if it has one) to `to` (and `to`.key)."""
    if not database.is_file():
        raise BackupProblem(f"there is no database at {database}: check TENURE_DATABASE_URL or --database")
    if to.exists() and not overwrite:
        raise BackupProblem(f"{to} already exists: choose another path, or pass --force to replace it")
    to.parent.mkdir(parents=True, exist_ok=True)
    draft = to.with_name(f".{to.name}.part")
    draft.unlink(missing_ok=True)
    try:
        _copy_database(database, draft)
        check_database(draft)
        os.replace(draft, to)
    finally:
        draft.unlink(missing_ok=True)
    key = key_file_of(database)
    copied_key = None
    if with_key and key.exists():
        copied_key = key_file_of(to)
        _copy_key(key, copied_key)
    return Copied(to, copied_key, to.stat().st_size, [])


def restore(backup_file: Path, database: Path, *, force: bool = False) -> Copied:
    """Puts the backup (and its key file) in place of the database.

    Refuses while a tenure process serves the database, unless `force` (then restart
    those processes). What it replaces is kept beside it, suffixed `.replaced-<time>`.
    """
    check_database(backup_file)
    if backup_file.resolve() == database.resolve():
        raise BackupProblem("the backup is the database itself")
    lock = None
    if database.exists():
        lock = _exclusive(database)
        if lock is None and not force:
            raise DatabaseInUse(
                f"{database} is in use by a running tenure process (demo, web, worker or scheduler): "
                "stop it first, or pass --force to replace the database under it (then restart it)"
            )
    try:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        database.parent.mkdir(parents=True, exist_ok=True)
        draft = database.with_name(f".{database.name}.restoring")
        draft.unlink(missing_ok=True)
        kept: list[Path] = []
        try:
            _copy_database(backup_file, draft)
            check_database(draft)
            if database.exists():
                # A checkpoint first, so that what is kept is whole without its -wal.
                conn = sqlite3.connect(database, timeout=30)
                try:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    conn.close()
                old = database.with_name(f"{database.name}.replaced-{stamp}")
                shutil.copy2(database, old)
                kept.append(old)
            os.replace(draft, database)
        finally:
            draft.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):  # the old database's: they must not be applied to the new one
            database.with_name(database.name + suffix).unlink(missing_ok=True)
        key_in_backup, key = key_file_of(backup_file), key_file_of(database)
        restored_key = None
        if key_in_backup.exists():
            if key.exists() and key.read_text() != key_in_backup.read_text():
                old_key = key.with_name(f"{key.name}.replaced-{stamp}")
                _copy_key(key, old_key)
                kept.append(old_key)
            _copy_key(key_in_backup, key)
            restored_key = key
        return Copied(database, restored_key, database.stat().st_size, kept)
    finally:
        if lock is not None:
            os.close(lock)
