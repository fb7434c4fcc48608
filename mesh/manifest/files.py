"""Which files make up a manifest folder, and what is wrong with the ones that cannot be read.

Every path is looked at without opening it first (a FIFO named `fleet.yaml` would block a reader
forever): a broken or looping symbolic link, a folder or device where a file belongs, a file that is
not YAML under `services/`, a misnamed `service/` folder or an unlistable folder is an error naming
the path. Names starting with `.` (`.gitkeep`, editor swap files) are not part of a manifest.
"""

from __future__ import annotations

import difflib
import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from mesh.manifest.yaml_source import os_reason

YAML_SUFFIXES = (".yaml", ".yml")
MISSING = "no such file or directory"


@dataclass
class Found:
    """Service files in order, and (path, message) for every path that is not a usable one."""

    files: list[Path] = field(default_factory=list)
    faults: list[tuple[Path, str]] = field(default_factory=list)


def file_fault(path: Path, what: str = "file") -> str | None:
    """Why `path` is not a regular file one can read, or None if it is one."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link that loops back on itself"
        if path.is_symlink():
            return f"is a broken symbolic link (its target {os.readlink(path)!r} does not exist)"
        if exc.errno == errno.ENOENT:
            return MISSING
        return f"cannot be read: {os_reason(exc)}"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return f"is a folder, not a {what}"
    return f"is not a regular file (a FIFO, socket or device), not a {what}"


def service_files(directory: Path) -> Found:
    found = Found()
    if directory.exists() or directory.is_symlink():
        problem = file_fault(directory, "folder")
        if problem and not problem.startswith("is a folder"):
            found.faults.append((directory, problem))
        else:
            _walk(directory, found, set())
    found.files.sort()  # errors and output never depend on the file system's listing order
    return found


def _walk(directory: Path, found: Found, seen: set[tuple[int, int]]) -> None:
    try:
        info = directory.stat()
        if (info.st_dev, info.st_ino) in seen:
            found.faults.append((directory, "is a folder link that loops back to a folder above it"))
            return
        seen.add((info.st_dev, info.st_ino))
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        found.faults.append((directory, f"cannot list folder: {os_reason(exc)}"))
        return
    for entry in entries:
        path = Path(directory, entry.name)
        if entry.name.startswith("."):
            continue
        problem = file_fault(path)
        if problem and problem.startswith("is a folder") and path.suffix not in YAML_SUFFIXES:
            _walk(path, found, seen)
        elif problem:
            found.faults.append((path, problem))
        elif path.suffix in YAML_SUFFIXES:
            found.files.append(path)
        else:
            found.faults.append((path, "is not a YAML file: service files end in .yaml or .yml"))


def stray_paths(root: Path, expected: set[str], services: str) -> list[tuple[Path, str]]:
    """Files and folders at the top of a manifest folder that would otherwise be ignored unseen."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        return [(root, f"cannot list folder: {os_reason(exc)}")]
    out = []
    for entry in entries:
        path = Path(root, entry.name)
        if entry.name.startswith(".") or entry.name in expected or entry.name == services:
            continue
        kind = file_fault(path)
        if kind and kind.startswith("is a folder") and path.suffix not in YAML_SUFFIXES:
            if _holds_yaml(path):
                hint = f"; did you mean {services}/?" if difflib.get_close_matches(entry.name, [services]) else ""
                out.append((path, f"unexpected folder: service files go in {services}/{hint}"))
        elif path.suffix in YAML_SUFFIXES:
            close = difflib.get_close_matches(entry.name, sorted(expected), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            out.append((path, f"unexpected manifest file; expected {', '.join(sorted(expected))} or "
                              f"{services}/*.yaml{hint}"))
    return out


def _holds_yaml(folder: Path) -> bool:
    try:
        return any(name.endswith(YAML_SUFFIXES) for _, _, names in os.walk(folder) for name in names)
    except OSError:
        return False
