"""Errors and warnings as values: every problem found in a manifest, reported together.

A diagnostic names the file and the path of the offending YAML node (e.g. `("calls", 2, "host")`);
its line is looked up only when it is reported, so the happy path pays nothing for line tracking.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

NodePath = tuple[str | int, ...]


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem: where (file, document, node path, line), which field, what and why."""

    file: str
    line: int
    field: str
    message: str
    reason: str = dataclasses.field(default="invalid", compare=False)
    severity: Severity = dataclasses.field(default=Severity.ERROR, compare=False)

    def render(self) -> str:
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return f"{self.file}:{self.line}: {self.field or '<document>'}: {prefix}{self.message}"


def field_name(path: NodePath) -> str:
    """`("calls", 2, "host")` → `calls[2].host`, the way a reader finds it in the YAML."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class Problem:
    """A diagnostic before its line is known: a file, a document index and a node path."""

    file: Path
    document: int
    path: NodePath
    message: str
    reason: str
    severity: Severity = Severity.ERROR
    key: bool = False  # point at the mapping key (e.g. an unknown field) rather than its value
    line: int | None = None  # known already (e.g. from the YAML parser): no lookup needed


LineLookup = Callable[[Path, int, NodePath, bool], int]


class ManifestError(Exception):
    """Raised with every error found; the CLI prints them and exits 1."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))


def resolve(problems: Iterable[Problem], lookup: LineLookup, root: Path,
            shown_as: str | None = None) -> list[Diagnostic]:
    """Attach line numbers and file names as the user knows them; sorted by file and line."""
    out = []
    for problem in problems:
        line = problem.line or lookup(problem.file, problem.document, problem.path, problem.key)
        out.append(
            Diagnostic(
                file=display_path(problem.file, root, shown_as),
                line=line,
                field=field_name(problem.path),
                message=problem.message,
                reason=problem.reason,
                severity=problem.severity,
            )
        )
    return sorted(out)


def display_path(file: Path, root: Path, shown_as: str | None = None) -> str:
    """A file as the user knows it: under `shown_as` (e.g. `main:stacks/prod`, a git side of a diff)
    when given; else relative to the working directory when it lies below it, else as given."""
    if shown_as is not None:
        try:
            inner = file.relative_to(root)
        except ValueError:
            return str(file)
        return shown_as if inner == Path() else f"{shown_as}/{inner.as_posix()}"
    try:
        return str(file.absolute().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(file)
