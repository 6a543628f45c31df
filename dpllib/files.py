"""Atomic file writes: readers (and a crash or a kill at any moment) see the old file or the
whole new one, never a part."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

# .NAME.HOST.PID.tmp, optionally followed by a suffix (.tmp.ipynb for papermill's output)
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<host>[^.]+)\.(?P<pid>\d+)\.tmp(\.[^.]+)?$")


def _host() -> str:
    return socket.gethostname().replace(".", "_") or "host"


def temporary_path(path: str | os.PathLike) -> Path:
    """A hidden sibling of ``path`` named after this host and process (``.NAME.HOST.PID.tmp``)
    to write before the rename; :func:`temporary_is_orphaned` reads the writer back from it."""
    path = Path(path)
    return path.with_name(f".{path.name}.{_host()}.{os.getpid()}.tmp")


def process_is_gone(host: str, pid: int, since: float, max_age_s: float = 86_400) -> bool:
    """Whether process ``pid`` of ``host`` has ended: asked directly on this host; on another
    host (whose processes cannot be asked) presumed once ``since`` (a time stamp) is older than
    ``max_age_s`` seconds."""
    if host != _host():
        return time.time() - since > max_age_s
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def temporary_is_orphaned(path: Path, max_age_s: float = 86_400) -> bool:
    """Whether the temporary ``path`` was left by a writer that is gone (:func:`process_is_gone`).
    Names not made by :func:`temporary_path` count as orphaned."""
    match = _TEMPORARY.match(path.name)
    if match is None:
        return True
    return process_is_gone(match["host"], int(match["pid"]), path.stat().st_mtime, max_age_s)


def claim(path: str | os.PathLike, max_age_s: float = 86_400) -> bool:
    """Claim ``path`` for this process (a file created exclusively, holding host and pid):
    True when this process holds it now, False when a live process does. A claim whose process
    is gone is taken over (two takers of the same stale claim at the same instant may both
    win: the work is then done twice, never lost)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                host, pid = path.read_text().split()
                since = path.stat().st_mtime
            except (OSError, ValueError):  # just created by another process, or released
                return False
            if (host, int(pid)) == (_host(), os.getpid()):
                return True
            if not process_is_gone(host, int(pid), since, max_age_s):
                return False
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{_host()} {os.getpid()}")
        return True
    return False


def release(path: str | os.PathLike) -> None:
    """Give up a claim this process holds (:func:`claim`)."""
    path = Path(path)
    try:
        if path.read_text().split() == [_host(), str(os.getpid())]:
            path.unlink()
    except (OSError, ValueError):
        pass


def atomic_write(path: str | os.PathLike, content: str | bytes | Callable[[Path], None]) -> Path:
    """Write ``content`` (text, bytes, or a function that writes the file it is given) to a
    temporary file in the same folder, fsync it, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        if callable(content):
            content(tmp)
        else:
            with open(tmp, "w" if isinstance(content, str) else "wb") as f:
                f.write(content)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
