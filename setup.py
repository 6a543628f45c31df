"""A wheel carries the notebooks and the book's sources as package data (dpllib/_resources/):
`dpl run`, `dpl book` and `dpl lab` then work outside a source checkout. An editable install
reads them from the checkout instead (dpllib.paths.resource)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RESOURCES = ("notebooks", "book")
GENERATED = shutil.ignore_patterns("_build", "chapters", "_extra", "_screenshots", "_toc.yml", ".ipynb_checkpoints",
                                   "__pycache__")


class BuildPyWithResources(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in RESOURCES:
            target = Path(self.build_lib) / "dpllib" / "_resources" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(Path(__file__).parent / name, target, ignore=GENERATED)


setup(cmdclass={"build_py": BuildPyWithResources})
