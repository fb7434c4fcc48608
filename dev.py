#!/usr/bin/env python3
"""The project's two entry points on a fresh machine with only Python 3.11+.

    python3 dev.py preview  # the main job: the Pulumi program for stack prod, offline (mock engine)
    python3 dev.py test     # the whole test suite
    python3 dev.py render   # the example stack's objects as YAML in out/prod/
    python3 dev.py setup    # only create/refresh .venv/ (CI steps that run .venv/bin/mesh)

Each creates `.venv/` on first use (and again when pyproject.toml or constraints.txt change),
installs the project with its test tools at the versions in constraints.txt, then runs.
Any further arguments are passed on (to `mesh preview`, `mesh render` or pytest).

This file runs on any Python 3 far enough to say which version it needs (no f-strings, no
annotations evaluated at run time), instead of pip's ResolutionImpossible on an older one.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".fleet-mesh-installed"
REQUIRED = (3, 11)


def check_python(version=sys.version_info):
    """None, or the message saying this Python is too old for the project."""
    if tuple(version[:2]) >= REQUIRED:
        return None
    text = ("fleet-mesh needs Python {}.{} or newer; this is Python {}.{} ({}). Run dev.py with a newer "
            "interpreter, e.g. `python3.11 dev.py preview`.")
    return text.format(REQUIRED[0], REQUIRED[1], version[0], version[1], sys.executable)


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_venv() -> Path:
    python = BIN / "python"
    if STAMP.is_file() and STAMP.read_text() == _fingerprint() and python.exists():
        return python
    if not python.exists():
        print("creating {}/ ...".format(VENV.relative_to(ROOT)), file=sys.stderr)  # noqa: UP032
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-c", "constraints.txt", "-e", ".[test]"], cwd=ROOT, check=True)
    STAMP.write_text(_fingerprint())
    return python


def main(argv):
    too_old = check_python()
    if too_old:
        print(too_old, file=sys.stderr)
        return 1
    if not argv or argv[0] not in ("preview", "render", "test", "setup"):
        print(__doc__, file=sys.stderr)
        return 2
    python = ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "setup":
        return 0
    if command == "preview":
        args = [str(python), "-m", "mesh", "preview", "--stack", "prod", *rest]
    elif command == "render":
        args = [str(python), "-m", "mesh", "render", "stacks/prod", "--out", "out/prod", *rest]
    else:
        args = [str(python), "-m", "pytest", *rest]
    return subprocess.run(args, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
