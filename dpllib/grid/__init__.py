"""The experiment grid: presets -> cells -> papermill runs -> records.

A preset (YAML) names benchmarks with their data sets, networks with weights and points, seeds
and a budget. Each cell is one run of the benchmark notebook, identified by the hash of its
config (:func:`dpllib.results.cell_id`); a cell whose record exists is skipped, so a rerun after
Ctrl-C, a crash or a new preset entry only runs what is missing. The grid never calls a
trainer: it runs notebooks and reads records.

One module per job: :mod:`.presets` (a preset and its cells), :mod:`.yours` (the user's
networks beside a run), :mod:`.notebook` (one cell through papermill), :mod:`.status` (cell
states from the records), :mod:`.local` and :mod:`.slurm` (running the missing cells),
:mod:`.estimates` (what a preset costs).
"""

from __future__ import annotations

from .estimates import estimate, networks_table, step_cost_files
from .local import clean_temporaries, expand_and_record, interleaved, run, run_claimed
from .notebook import CELL_NOTEBOOK, IsolatedKernelManager, execute_cell_notebook, kernel_death
from .presets import PRESET_SCHEMA, cell_ids, cells, entry_points, load_preset, points_by_network, preset_path
from .slurm import CellJob, run_slurm
from .status import STATES, CellStatus, states, status, status_table, to_run
from .yours import YOURS, add_yours, read_yours, with_yours

__all__ = ["CELL_NOTEBOOK", "PRESET_SCHEMA", "STATES", "YOURS", "CellJob", "CellStatus", "IsolatedKernelManager",
           "add_yours", "cell_ids", "cells", "clean_temporaries", "entry_points", "estimate", "execute_cell_notebook",
           "expand_and_record", "interleaved", "kernel_death", "load_preset", "networks_table", "points_by_network",
           "preset_path", "read_yours", "run", "run_claimed", "run_slurm", "states", "status",
           "status_table", "step_cost_files", "to_run", "with_yours"]
