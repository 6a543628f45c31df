"""Verified downloads: streamed, resumable, checked against sha256, moved into place atomically.

A file is only ever visible at its final path once its checksum matched. While downloading,
bytes go to ``<dest>.part``; an interrupted transfer resumes from there (HTTP Range) on the
next call. A checksum mismatch deletes the partial file and raises.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from .errors import DplError, UnavailableError

CHUNK = 1 << 20


def sha256_of(path: str | os.PathLike, chunk: int = CHUNK) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None,
    *,
    what: str = "file",
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` unless a file with the right sha256 is already there.

    ``sha256`` is the full hex digest, a prefix of it (torchvision names files by one), or
    None to skip the check.

    Returns the final path. Raises :class:`UnavailableError` when the server cannot be
    reached (the message names the URL and the path to place the file at by hand) and
    :class:`DplError` on a checksum mismatch (nothing is left behind).
    """
    dest = Path(dest)
    if dest.exists():
        if sha256 is None or sha256_of(dest).startswith(sha256):
            return dest
        raise DplError(
            f"{what}: {dest} exists but its sha256 is {sha256_of(dest)}, expected {sha256}. "
            f"Delete it and run again to download a fresh copy from {url}."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    done = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and done:  # the partial file is already complete
            response = None
        else:
            raise UnavailableError(_unreachable(what, url, dest, err)) from err
    except (urllib.error.URLError, OSError) as err:
        raise UnavailableError(_unreachable(what, url, dest, err)) from err
    if response is not None:
        _receive(response, part, done, what, url, progress)
    if sha256 is not None:
        got = sha256_of(part)
        if not got.startswith(sha256):
            part.unlink()
            raise DplError(
                f"{what}: the file downloaded from {url} has sha256 {got}, expected {sha256}; "
                "it was deleted. The server may serve another version: check the URL."
            )
    os.replace(part, dest)
    return dest


def _receive(response, part: Path, done: int, what: str, url: str, progress: bool) -> None:
    """Write ``response`` into ``part`` (appended to its ``done`` bytes when the server resumed);
    a transfer that breaks off keeps what arrived for the next call."""
    with response:
        resumed = response.status == 206
        total = response.headers.get("Content-Length")
        total = int(total) + (done if resumed else 0) if total else None
        bar = tqdm(total=total, initial=done if resumed else 0, unit="B", unit_scale=True,
                   desc=f"{what}", disable=not progress)
        try:
            with open(part, "ab" if resumed else "wb") as f:
                while block := response.read(CHUNK):
                    f.write(block)
                    bar.update(len(block))
            if total is not None and part.stat().st_size < total:
                raise http.client.IncompleteRead(b"", total - part.stat().st_size)
        except (OSError, http.client.HTTPException) as err:
            raise UnavailableError(
                f"{what}: the transfer from {url} broke off ({err}); {part} keeps what arrived "
                "and the next call resumes from there."
            ) from err
        finally:
            bar.close()


def _unreachable(what: str, url: str, dest: Path, err: Exception) -> str:
    return (
        f"{what} is not on disk and could not be downloaded from {url} ({err}). "
        f"On a machine with internet access this happens automatically; offline, download it "
        f"elsewhere and place it at {dest}."
    )
