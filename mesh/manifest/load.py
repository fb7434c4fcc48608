"""Finding the manifest's files, parsing them and checking each document against the schema.

A manifest is a directory (`fleet.yaml`, `locations.yaml`, `services/**/*.yaml`, any number of
service documents per file) or a single file holding the fleet plus `services:` and `locations:`.
Every document is checked even after an earlier one failed, so one run reports every error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from mesh.diagnostics import NodePath, Problem
from mesh.manifest import schema
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


# Locations are checked entry by entry, so one broken entry does not hide every other service's.
_LOCATIONS = TypeAdapter(dict[schema.DnsLabel, Any])
_LOCATION_LIST = TypeAdapter(list[schema.LocationEntry])


def read_manifest(root: Path) -> tuple[RawManifest, list[Problem]]:
    """Parse and schema-check every file under `root` (a directory or a single bundle file)."""
    if root.is_file():
        return _read_bundle(root)
    if not root.is_dir():
        origin = Origin(root)
        return _empty(root, origin), [origin.problem("no such file or directory", "not-found")]
    return _read_directory(root)


def _empty(root: Path, origin: Origin) -> RawManifest:
    return RawManifest(root, None, origin, (), {}, origin)


def _read_directory(root: Path) -> tuple[RawManifest, list[Problem]]:
    problems: list[Problem] = []
    fleet_origin = Origin(root / FLEET_FILE)
    fleet = None
    if fleet_origin.file.is_file():
        fleet = _single(fleet_origin, schema.Fleet, problems)
    else:
        problems.append(fleet_origin.problem("the fleet file is missing", "missing-file"))

    locations_origin = Origin(root / LOCATIONS_FILE)
    locations: dict[str, list[schema.Location]] = {}
    broken: set[str] = set()
    if locations_origin.file.is_file():
        for name, entries in (_single(locations_origin, _LOCATIONS, problems) or {}).items():
            checked = _validate(entries, _LOCATION_LIST, locations_origin.at(name), problems)
            if checked is None:
                broken.add(name)
            else:
                locations[name] = checked
    else:
        problems.append(locations_origin.problem("the locations file is missing", "missing-file"))

    services = []
    invalid: list[Any] = []
    unreadable: list[Path] = []
    for file in _service_files(root / SERVICES_DIR):
        documents, faults = parse(file)
        problems += [Problem(file, 0, (), f.message, f.reason, line=f.line) for f in faults]
        if faults:
            unreadable.append(file)
        for index, document in enumerate(documents if not faults else []):
            origin = Origin(file, index)
            service = _validate(document, schema.Service, origin, problems)
            if service is not None:
                services.append(SourcedService(service, origin))
            else:
                invalid.append(document)
    problems += _stray_files(root)
    known = _declared_names(invalid, complete=not unreadable)
    manifest = RawManifest(root, fleet, fleet_origin, tuple(services), locations, locations_origin, known,
                           frozenset(broken))
    return manifest, problems


def _read_bundle(file: Path) -> tuple[RawManifest, list[Problem]]:
    problems: list[Problem] = []
    origin = Origin(file)
    bundle = _single(origin, schema.Bundle, problems)
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


def _single(origin: Origin, model: Any, problems: list[Problem]) -> Any:
    """The one document of a file, validated; None (with problems recorded) if it is not usable."""
    documents, faults = parse(origin.file)
    problems += [Problem(origin.file, 0, (), f.message, f.reason, line=f.line) for f in faults]
    if faults:
        return None
    if len(documents) != 1:
        problems.append(
            origin.problem(f"expected exactly one YAML document, found {len(documents)}", "documents")
        )
        return None
    return _validate(documents[0], model, origin, problems)


def _validate(document: Any, model: Any, origin: Origin, problems: list[Problem]) -> Any:
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(document)
        return model.model_validate(document)
    except ValidationError as exc:
        problems += [_problem_from_pydantic(error, origin) for error in exc.errors()]
        return None


def _service_files(directory: Path) -> Iterator[Path]:
    if not directory.is_dir():
        return iter(())
    # Sorted so that errors and output never depend on the file system's listing order.
    return iter(sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))


def _stray_files(root: Path) -> list[Problem]:
    """A misspelt `location.yaml` would otherwise be ignored without a word."""
    expected = {FLEET_FILE, LOCATIONS_FILE}
    return [
        Problem(
            path, 0, (),
            f"unexpected manifest file; expected {FLEET_FILE}, {LOCATIONS_FILE} or "
            f"{SERVICES_DIR}/*.yaml",
            "unexpected-file",
        )
        for path in sorted(root.iterdir())
        if path.suffix in (".yaml", ".yml") and path.is_file() and path.name not in expected
    ]


# ------------------------------------------------------------------------- pydantic → our messages

_PATTERN_HINTS = {
    schema.DNS_LABEL: "a DNS label: lower-case letters, digits and '-', starting and ending with a "
    "letter or digit",
    schema.CLUSTER_NAME: "a GKE cluster name: lower-case letters, digits and '-', starting with a "
    "letter, at most 40 characters",
    schema.GCP_PROJECT: "a GCP project id: 6-30 lower-case letters, digits and '-', starting with a "
    "letter",
    schema.GCP_REGION: "a GCP region such as us-east1",
    schema.DURATION: "a duration such as 500ms, 2s, 1m or 1h",
    schema.DNS_NAME: "a valid DNS name (lower-case labels of letters, digits and '-', separated by dots, "
    "at least two labels)",
}


def _known_fields() -> list[str]:
    names: set[str] = set()
    for value in vars(schema).values():
        if isinstance(value, type) and issubclass(value, BaseModel):
            names.update(f.alias or n for n, f in value.model_fields.items())
    return sorted(names)


_KNOWN_FIELDS = _known_fields()


def _problem_from_pydantic(error: Any, origin: Origin) -> Problem:
    # Pydantic puts validator names (e.g. `function-before[...]`) in locations; they are not YAML.
    loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and "[" in part))
    kind = error["type"]
    if kind == "missing":
        # The path names the missing field; its line is the one of the mapping that lacks it.
        return origin.problem(f"required field {loc[-1]!r} is missing", "missing-field", *loc)
    if kind == "extra_forbidden":
        name = str(loc[-1])
        hint = difflib.get_close_matches(name, _KNOWN_FIELDS, n=1)
        suffix = f"; did you mean {hint[0]!r}?" if hint else ""
        return origin.problem(f"unknown field {name!r}{suffix}", "unknown-field", *loc, key=True)
    if kind == "string_pattern_mismatch":
        pattern = error["ctx"]["pattern"]
        expected = _PATTERN_HINTS.get(pattern, f"a string matching {pattern}")
        return origin.problem(f"{error['input']!r} is not {expected}", "invalid-format", *loc)
    message = str(error["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
    if kind not in ("value_error",) and _short(error.get("input")):
        message = f"{message} (got {error['input']!r})"
    return origin.problem(message, f"schema:{kind}", *loc)


def _short(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and len(repr(value)) <= 60
