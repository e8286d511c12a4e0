"""Build hook: ship the top-level ``schemas/`` folder inside the wheel as ``epcis/schemas/``.

Everything else about the package is declared in pyproject.toml. The schemas stay at the
repository root where people look for them; an installed package finds its copy through
``epcis.validation.schema_dir()``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SCHEMAS = Path(__file__).resolve().parent / "schemas"
SCHEMA_SUFFIXES = (".xsd", ".json", ".yaml")


class BuildWithSchemas(build_py):
    """build_py, then a copy of our schema files into the built ``epcis`` package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads schemas/ where it is
            return
        target = Path(self.build_lib) / "epcis" / "schemas"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(SCHEMAS.rglob("*")):
            if path.is_file() and path.suffix in SCHEMA_SUFFIXES:
                destination = target / path.relative_to(SCHEMAS)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)


setup(cmdclass={"build_py": BuildWithSchemas})
