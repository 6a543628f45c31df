"""Exceptions raised by dpllib. Each message names the problem and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DplError(ValueError):
    """Bad input to dpllib: a wrong name, shape, range, configuration or file."""


class UnavailableError(FileNotFoundError):
    """A resource (weights, data set) is neither on disk nor downloadable right now."""


def close_matches(name: str, candidates: Iterable[str], n: int = 5) -> str:
    """A short ', '-joined list of the candidates closest to ``name`` (for error messages)."""
    candidates = list(dict.fromkeys(candidates))
    hits = difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)
    if not hits:
        hits = [c for c in candidates if name.lower() in c.lower()][:n]
    return ", ".join(hits) if hits else "(none close)"


def check_one_of(name: str, value: object, allowed: Iterable[object]) -> None:
    """Raise a DplError naming ``name``, its allowed values and ``value`` unless it is one of them."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise DplError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
