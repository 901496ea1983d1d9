"""Files the bot writes hold webhook payloads and queued work: each is 0600, in a directory it creates 0700.

SQLite creates a database's ``-wal`` and ``-shm`` files with the mode of the database file itself, so
creating the database file 0600 before SQLite opens it covers them too. A file left wider by an older
version is narrowed when the bot opens it (if it owns it); a directory the bot did not create is left
as it is (it may be ``/tmp`` or a mounted volume) and only a warning names it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and missing parents) with mode 0700; warn if an existing one is open to others."""
    target = Path(path)
    missing: list[Path] = []
    probe = target
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(directory, DIR_MODE)  # mkdir's mode is masked by the umask; this one is exact
    if not missing:
        _warn_if_open(target)
    return target


def _warn_if_open(directory: Path) -> None:
    try:
        info = directory.stat()
    except OSError:
        return
    if info.st_mode & 0o007 and not info.st_mode & stat.S_ISVTX:
        log.warning("%s is writable or readable by every user; keep the bot's files in a 0700 directory", directory)


def private_file(path: str | os.PathLike[str], *, side_files: tuple[str, ...] = SQLITE_SIDE_FILES) -> Path:
    """Create ``path`` empty with mode 0600 unless it exists; narrow it (and its SQLite side files) to 0600
    if this process owns them and they are open to group or others."""
    target = Path(path)
    private_dir(target.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    for candidate in (target, *(Path(f"{target}{suffix}") for suffix in side_files)):
        _narrow(candidate)
    return target


def _narrow(path: Path) -> None:
    try:
        info = path.stat()
        if info.st_mode & 0o077 and info.st_uid == os.geteuid():
            os.chmod(path, FILE_MODE)
    except OSError:
        return
