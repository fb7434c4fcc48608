"""Finding the manifest's files, parsing them and checking each document against the schema.

A manifest is a directory (`fleet.yaml`, `locations.yaml`, `services/**/*.yaml`, any number of
service documents per file) or a single file holding the fleet plus `services:` and `locations:`.
Every document is checked even after an earlier one failed, so one run reports every error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from mesh.diagnostics import NodePath, Problem, display_path
from mesh.manifest import files, messages, schema
from mesh.manifest.messages import describe
from mesh.manifest.yaml_source import parse

FLEET_FILE = "fleet.yaml"
LOCATIONS_FILE = "locations.yaml"
SERVICES_DIR = "services"


@dataclass(frozen=True)
class Origin:
    """Where a value came from: file, document index within it, node path within the document."""

    file: Path
    document: int = 0
    path: NodePath = ()

    def at(self, *more: str | int) -> Origin:
        return Origin(self.file, self.document, self.path + more)

    def problem(self, message: str, reason: str, *more: str | int, key: bool = False) -> Problem:
        return Problem(self.file, self.document, self.path + more, message, reason, key=key)


@dataclass(frozen=True)
class SourcedService:
    service: schema.Service
    origin: Origin


@dataclass(frozen=True)
class Declared:
    """Names and hosts of service documents that failed their schema, so that references to them
    are not reported as unknown too. `complete` is False when a file could not be read at all:
    then no reference can be judged unknown."""

    names: frozenset[str] = frozenset()
    hosts: frozenset[str] = frozenset()
    complete: bool = True


@dataclass(frozen=True)
class RawManifest:
    """Every document that passed its schema, with where it came from. Not yet cross-checked."""

    root: Path
    fleet: schema.Fleet | None
    fleet_origin: Origin
    services: tuple[SourcedService, ...]
    locations: dict[str, list[schema.Location]]
    locations_origin: Origin
    invalid: Declared = Declared()
    broken_locations: frozenset[str] = frozenset()  # entries reported already; no "has no location"
    locations_complete: bool = True  # False: the file was unusable, so no service lacks a location


# Locations are checked entry by entry, so one broken entry does not hide every other service's.
_LOCATION_LIST: Any = list[schema.LocationEntry]
_SERVICE_NAME: Any = schema.DnsLabel
_UNUSABLE = object()


def read_manifest(root: Path) -> tuple[RawManifest, list[Problem]]:
    """Parse and schema-check every file under `root` (a directory or a single bundle file)."""
    fault = files.file_fault(root, "manifest")
    if fault is None:
        return _read_bundle(root)
    if not fault.startswith("is a folder"):
        origin = Origin(root)
        reason = "not-found" if fault == files.MISSING else "unreadable"
        return _empty(root, origin), [Problem(root, 0, (), fault, reason, line=1)]
    return _read_directory(root)


def _empty(root: Path, origin: Origin) -> RawManifest:
    return RawManifest(root, None, origin, (), {}, origin)


def _read_directory(root: Path) -> tuple[RawManifest, list[Problem]]:
    problems: list[Problem] = []
    fleet_origin = Origin(root / FLEET_FILE)
    fleet = None
    if _present(fleet_origin, "the fleet file is missing", problems):
        fleet = _single(fleet_origin, schema.Fleet, problems)
    locations_origin = Origin(root / LOCATIONS_FILE)
    locations: dict[str, list[schema.Location]] = {}
    broken: set[str] = set()
    complete = False
    if _present(locations_origin, "the locations file is missing", problems):
        complete = _read_locations(locations_origin, locations, broken, problems)
    services, known = _read_services(root / SERVICES_DIR, problems)
    problems += [Problem(path, 0, (), message, "unexpected-file", line=1)
                 for path, message in files.stray_paths(root, {FLEET_FILE, LOCATIONS_FILE}, SERVICES_DIR)]
    manifest = RawManifest(root, fleet, fleet_origin, tuple(services), locations, locations_origin, known,
                           frozenset(broken), complete)
    return manifest, problems


def _present(origin: Origin, missing: str, problems: list[Problem]) -> bool:
    fault = files.file_fault(origin.file)
    if fault is not None:
        problems.append(Problem(origin.file, 0, (), missing if fault == files.MISSING else fault,
                                "missing-file" if fault == files.MISSING else "unreadable", line=1))
    return fault is None


def _read_locations(origin: Origin, out: dict[str, list[schema.Location]], broken: set[str],
                    problems: list[Problem]) -> bool:
    """Fill `out` entry by entry; False when the file as a whole is unusable (then no service can be
    said to lack a location)."""
    document = _document(origin, problems)
    if document is _UNUSABLE:
        return False
    if not isinstance(document, dict):
        problems.append(origin.problem(f"must map each service name to its clusters (got {describe(document)})",
                                       "schema:dict_type"))
        return False
    for name, entries in document.items():
        if _validate(name, _SERVICE_NAME, origin.at(str(name)), problems, key=True) is None:
            broken.add(str(name))
            continue
        checked = _validate(entries, _LOCATION_LIST, origin.at(name), problems)
        if checked is None:
            broken.add(name)
        else:
            out[name] = checked
    return True


def _read_services(directory: Path, problems: list[Problem]) -> tuple[list[SourcedService], Declared]:
    services = []
    invalid: list[Any] = []
    found = files.service_files(directory)
    problems += [Problem(path, 0, (), message, "unreadable", line=1) for path, message in found.faults]
    unreadable = bool(found.faults)
    for file in found.files:
        documents, faults = parse(file)
        problems += [Problem(file, 0, (), f.message, f.reason, line=f.line) for f in faults]
        if faults:
            unreadable = True
            continue
        if not documents:
            problems.append(Problem(file, 0, (), "a service file must define a service (this one is empty or only "
                                    "comments)", "empty-file"))
        for index, document in enumerate(documents):
            origin = Origin(file, index)
            service = _validate(document, schema.Service, origin, problems)
            if service is not None:
                services.append(SourcedService(service, origin))
            else:
                invalid.append(document)
    return services, _declared_names(invalid, complete=not unreadable)


def _read_bundle(file: Path) -> tuple[RawManifest, list[Problem]]:
    problems: list[Problem] = []
    origin = Origin(file)
    document = _document(origin, problems)
    if isinstance(document, dict) and "services" not in document and "locations" not in document:
        in_folder = (file.parent / LOCATIONS_FILE).exists()
        folder = f"give its folder ({display_path(file.parent, file.parent)}) or " if in_folder else ""
        problems.append(origin.problem(
            f"this is a fleet file without services: a single-file manifest needs `services:` and `locations:` "
            f"too; {folder}add them here", "not-a-bundle"))
        return _empty(file, origin), problems
    bundle = None if document is _UNUSABLE else _validate(document, schema.Bundle, origin, problems)
    if bundle is None:
        return _empty(file, origin), problems
    services = tuple(
        SourcedService(service, origin.at("services", i)) for i, service in enumerate(bundle.services)
    )
    fleet = schema.Fleet.model_validate(bundle.model_dump(exclude={"services", "locations"}))
    return (
        RawManifest(file, fleet, origin, services, bundle.locations, origin.at("locations")),
        problems,
    )


def _declared_names(documents: list[Any], complete: bool) -> Declared:
    def strings(key: str) -> frozenset[str]:
        return frozenset(d[key] for d in documents if isinstance(d, dict) and isinstance(d.get(key), str))

    return Declared(strings("name"), strings("host"), complete)


def _document(origin: Origin, problems: list[Problem]) -> Any:
    """The one document of a file, or `_UNUSABLE` (with problems recorded)."""
    documents, faults = parse(origin.file)
    problems += [Problem(origin.file, 0, (), f.message, f.reason, line=f.line) for f in faults]
    if faults:
        return _UNUSABLE
    if len(documents) != 1:
        found = "the file is empty (or only comments)" if not documents else f"found {len(documents)}"
        problems.append(origin.problem(f"expected exactly one YAML document; {found}", "documents"))
        return _UNUSABLE
    return documents[0]


def _single(origin: Origin, model: Any, problems: list[Problem]) -> Any:
    """The one document of a file, validated; None (with problems recorded) if it is not usable."""
    document = _document(origin, problems)
    return None if document is _UNUSABLE else _validate(document, model, origin, problems)


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _validate(document: Any, model: Any, origin: Origin, problems: list[Problem], key: bool = False) -> Any:
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(model)
    try:
        return adapter.validate_python(document, **schema.VALIDATE)
    except ValidationError as exc:
        problems += [_problem(error, document, model, origin, key) for error in exc.errors()]
        return None


def _problem(error: Any, document: Any, model: Any, origin: Origin, key: bool) -> Problem:
    path, names_key = messages.yaml_path(document, error["loc"])
    if error["type"] == "missing" or error["type"] == "extra_forbidden":
        parent = path[:-1]
        words = messages.message(error, messages.model_at(model, parent))
        return origin.problem(words, "missing-field" if error["type"] == "missing" else "unknown-field", *path,
                              key=error["type"] == "extra_forbidden")
    words = messages.message(error, None)
    reason = "invalid-format" if error["type"] == "string_pattern_mismatch" else f"schema:{error['type']}"
    return origin.problem(words, reason, *path, key=key or names_key)


