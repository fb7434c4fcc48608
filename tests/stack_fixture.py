"""The suite's own stack, so that stacks/prod (the example users edit) can change freely.

tests/fixtures/project is a frozen copy of the example: its stack file (Pulumi.prod.yaml) and its
manifest (stacks/prod). Tests run the real program (the root's Pulumi.yaml and __main__.py) on it;
goldens and the preview snapshot belong to it. `python3 dev.py test tests/test_smoke.py` checks the
example itself.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "project"


@functools.cache
def project() -> Path:
    """A project folder for the fixture stack (one per test process, removed at exit)."""
    folder = Path(tempfile.mkdtemp(prefix="fleet-mesh-fixture-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, folder / name)
    shutil.copy(FIXTURE / "Pulumi.prod.yaml", folder / "Pulumi.prod.yaml")
    shutil.copytree(FIXTURE / "stacks", folder / "stacks")
    return folder


STACK = FIXTURE / "stacks" / "prod"  # the fixture manifest, read in place
