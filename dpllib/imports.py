"""Import costs that dpllib's own processes (the ``dpl`` CLI and the notebook kernels it starts)
avoid; a program that imports dpllib as a library is left as it is.

jsonschema, which altair (every chart) and the preset check import, loads rfc3987-syntax when
it is installed (jupyter-events' ``format-nongpl`` extra installs it) to check the ``iri``
format, and that module compiles an Earley grammar when imported: 2.5 s per process on a 2-core
machine, for each chapter and each cell of a book. dpllib checks no IRI, so its processes mark
the module absent; jsonschema then leaves that one format unchecked, as it does whenever the
package is not installed.
"""

from __future__ import annotations

import sys

UNUSED_SLOW_MODULES = ("rfc3987_syntax",)
# run first in each kernel dpllib starts (ipykernel's exec_lines)
KERNEL_STARTUP = "import dpllib.imports; dpllib.imports.skip_unused_slow_imports()"


def skip_unused_slow_imports() -> None:
    """Mark :data:`UNUSED_SLOW_MODULES` as absent in this process (an import of one then raises
    ImportError), unless one is imported already."""
    for name in UNUSED_SLOW_MODULES:
        sys.modules.setdefault(name, None)
