"""Loading a manifest: parse, check every document and every rule, then build the world model.

`load(path)` either returns a `World` (plus warnings) or raises `ManifestError` carrying every
error found, each with file, line and field. Nothing is built from a manifest with errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mesh import gcpause
from mesh.diagnostics import Diagnostic, ManifestError, Severity, resolve
from mesh.manifest import rules
from mesh.manifest.load import read_manifest
from mesh.manifest.yaml_source import line_of

if TYPE_CHECKING:
    from mesh.model import World


@dataclass(frozen=True)
class Loaded:
    world: World
    warnings: tuple[Diagnostic, ...]


def load(path: Path | str, shown_as: str | None = None) -> Loaded:
    """The world model of the manifest at `path`, or `ManifestError` with every error. Files are
    named relative to the working directory, or under `shown_as` (e.g. `main:stacks/prod` for a
    manifest exported from git)."""
    with gcpause.paused():
        return _load(Path(path), shown_as)


def _load(root: Path, shown_as: str | None) -> Loaded:
    from mesh.model import World  # the model is built on the schema: import it once both exist

    raw, problems = read_manifest(root)
    problems += rules.check(raw)
    diagnostics = resolve(problems, line_of, root, shown_as)
    errors = [d for d in diagnostics if d.severity is Severity.ERROR]
    if errors or raw.fleet is None:
        raise ManifestError(errors)
    warnings = tuple(d for d in diagnostics if d.severity is Severity.WARNING)
    world = World.build(
        raw.fleet,
        [(entry.service, entry.origin.file) for entry in raw.services],
        raw.locations,
        root,
    )
    return Loaded(world, warnings)


__all__ = ["Loaded", "ManifestError", "load"]
