"""The state of each cell from the records on disk: done, stale (an ok record of other
code), failed or pending; which of them a run takes."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import DplError
from ..results import code_version, read_record, record_path
from .presets import cells
from .yours import with_yours


STATES = ("done", "stale", "failed", "pending")


@dataclass
class CellStatus:
    cell: dict
    state: str  # done | stale (an ok record from other code) | failed | pending


def status(preset: dict, results_dir: str | os.PathLike) -> list[CellStatus]:
    """Each cell of the preset (and of the networks evaluated beside it) with its state from the
    records on disk."""
    return states(cells(with_yours(preset, results_dir), results_dir), results_dir)


def states(cell_list: list[dict], results_dir: str | os.PathLike) -> list[CellStatus]:
    """Each of ``cell_list`` with its state from the records on disk."""
    current = code_version()
    out = []
    for cell in cell_list:
        path = record_path(cell, results_dir)
        if not path.exists():
            out.append(CellStatus(cell, "pending"))
            continue
        try:
            record = read_record(path)
        except DplError:
            out.append(CellStatus(cell, "failed"))
            continue
        if record["status"] != "ok":
            state = "failed"
        else:
            state = "done" if record.get("code_version") == current else "stale"
        out.append(CellStatus(cell, state))
    return out


def status_table(preset: dict, results_dir: str | os.PathLike, statuses: list[CellStatus] | None = None) -> str:
    """done / stale / failed / pending per benchmark, as text, with what to do about the
    stale and failed ones (``statuses``: the preset's :func:`status` when already read)."""
    counts: dict[str, Counter] = {}
    for s in status(preset, results_dir) if statuses is None else statuses:
        counts.setdefault(s.cell["benchmark"], Counter())[s.state] += 1
    lines = [f"{'benchmark':18s} " + " ".join(f"{state:>7s}" for state in STATES)]
    for bench, c in [*counts.items(), ("total", sum(counts.values(), Counter()))]:
        lines.append(f"{bench:18s} " + " ".join(f"{c[state]:7d}" for state in STATES))
    total = sum(counts.values(), Counter())
    if total["stale"]:
        lines.append(f"{total['stale']} records come from other dpllib code (this code: {code_version()}); "
                     "rerun them with --rerun-stale")
    if total["failed"]:
        lines.append(f"{total['failed']} cells failed (their records hold the traceback); rerun them with "
                     "--retry-failed")
    lines.append(f"records: {Path(results_dir).resolve()}")
    return "\n".join(lines)


def wanted(state: str, retry_failed: bool = False, rerun_stale: bool = False) -> bool:
    """Whether a cell in ``state`` runs: pending ones, and failed or stale ones when asked."""
    return state == "pending" or (retry_failed and state == "failed") or (rerun_stale and state == "stale")


def to_run(cell_list: list[dict], results_dir: str | os.PathLike, retry_failed: bool = False,
           rerun_stale: bool = False) -> tuple[list[dict], Counter]:
    """The cells of ``cell_list`` to run (pending, and failed or stale ones when asked) and the
    count of the rest."""
    todo, skipped = [], Counter()
    for s in states(cell_list, results_dir):
        if wanted(s.state, retry_failed, rerun_stale):
            todo.append(s.cell)
        else:
            skipped[f"skipped ({s.state})" if s.state != "done" else "skipped"] += 1
    return todo, skipped
