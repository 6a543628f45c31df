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


def temporary_is_orphaned(path: Path, max_age_s: float = 86_400) -> bool:
    """Whether the temporary ``path`` was left by a writer that is gone: a process of this host
    that no longer runs, or (another host, whose processes cannot be asked) older than
    ``max_age_s`` seconds. Names not made by :func:`temporary_path` count as orphaned."""
    match = _TEMPORARY.match(path.name)
    if match is None:
        return True
    if match["host"] != _host():
        return time.time() - path.stat().st_mtime > max_age_s
    try:
        os.kill(int(match["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


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
