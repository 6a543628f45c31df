"""The runner's side of a cell: papermill executes the cell notebook in an isolated kernel;
a kernel that dies still leaves a (failed) record. The kernel's side is
:func:`dpllib.training.run_cell_in_notebook`."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import traceback
from pathlib import Path

from jupyter_client import AsyncKernelManager

from ..files import temporary_path
from ..paths import resource
from ..results import failed_record, read_record, record_path, write_record


CELL_NOTEBOOK = "benchmarks/cell.ipynb"  # under the notebooks folder: one notebook for every benchmark


class IsolatedKernelManager(AsyncKernelManager):
    """A kernel on IPC sockets in a private folder: parallel kernels cannot race for TCP ports
    (papermill issue 511), and nothing listens on the network. Asynchronous, so that nbclient
    polls it: a kernel that dies (the out-of-memory killer, a segfault) ends the notebook within
    seconds. Its exit status is kept in :data:`KERNEL_EXITS` for the failed record."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"
        self.ip = os.path.join(tempfile.mkdtemp(prefix="dpl-kernel-"), "ipc")

    async def _async_cleanup_resources(self, restart: bool = False) -> None:  # jupyter_client's hook
        process = getattr(self.provisioner, "process", None)
        if process is not None and process.poll() is not None:
            KERNEL_EXITS.append(process.returncode)
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(os.path.dirname(self.ip), ignore_errors=True)

    cleanup_resources = _async_cleanup_resources


KERNEL_EXITS: list[int] = []  # exit statuses of kernels that had ended by their shutdown (this process)


def kernel_death(code: int | None) -> str:
    """A cause for a kernel's exit status: 'killed by signal 9 (SIGKILL; ...)' or 'exit status N'."""
    if code is None:
        return "the kernel died"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else "?"
        hint = "; the out-of-memory killer sends it" if name == "SIGKILL" else ""
        return f"the kernel was killed by signal {-code} ({name}{hint})"
    return f"the kernel exited with status {code}"


def absolute_environment() -> None:
    """Make the path settings in the environment absolute, before kernels and jobs (which run in
    other folders) inherit them."""
    for name in ("DPL_DATA_ROOT", "DPL_CACHE", "DPL_RESULTS", "TORCH_HOME", "HF_HOME"):
        value = os.environ.get(name)
        if value:
            os.environ[name] = str(Path(value).expanduser().resolve())


def execute_cell_notebook(cell: dict, results_dir: str | os.PathLike) -> dict:
    """Run the benchmark notebook for one cell with papermill; keep the executed notebook beside the record.
    Returns the record. A notebook that dies before writing its record gets a 'failed' record
    with the traceback, so the grid goes on."""
    import papermill as pm

    absolute_environment()
    results_dir = Path(results_dir).resolve()
    path = record_path(cell, results_dir)
    executed = path.with_suffix(".ipynb")
    scratch = temporary_path(executed).with_suffix(".tmp.ipynb")
    path.parent.mkdir(parents=True, exist_ok=True)
    params = dict(cell)
    params["record_path"] = str(path)
    start = time.perf_counter()
    error = None
    exits = len(KERNEL_EXITS)
    try:
        pm.execute_notebook(str(resource("notebooks") / CELL_NOTEBOOK), str(scratch), parameters=params,
                            kernel_name="python3", progress_bar=False, cwd=str(path.parent),
                            kernel_manager_class="dpllib.grid.notebook.IsolatedKernelManager")
    except Exception as err:  # papermill's execution error, a dead kernel, ...
        error = traceback.format_exc()
        if type(err).__name__ == "DeadKernelError":
            cause = kernel_death(KERNEL_EXITS[-1] if len(KERNEL_EXITS) > exits else None)
            error += f"\nDeadKernelError: {cause}"
    if scratch.exists():
        os.replace(scratch, executed)
    if path.exists():
        return read_record(path)
    record = failed_record(cell, {}, (error or "the notebook wrote no record").strip().splitlines()[-1],
                           error or "", time.perf_counter() - start)
    write_record(record, path)
    return record
