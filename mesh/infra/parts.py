"""One cluster's mesh config split over several stacks, for a cluster too big for one (pure).

A hub cluster of a large fleet can hold more mesh objects than one stack should (past a few
thousand resources Pulumi's engine slows down badly, pulumi/pulumi#7682), mostly the imported
entries of the hundreds of services it calls. Its config is then split into `of` parts:

- part 1 stays with the stack that manages the cluster (GKE, istiod, gateways) and keeps the
  cluster's shared objects: everything in the control plane's namespaces (mesh-wide policy, the
  east-west, ingress and egress gateways' config) and the config-only `mesh-imports` and
  `mesh-external` Namespaces themselves;
- the rest moves in units that a correct render needs together: a service namespace whole (its
  Namespace, Sidecar, policies and entries), or one imported service's or external destination's
  entries in `mesh-imports` / `mesh-external`.

A unit's part is chosen by rendezvous hashing on its identity, never by packing: adding or removing
a service moves no other unit, and going from n to n+1 parts moves only the units the new part wins
(about 1/(n+1) of them). A unit changing stacks is a delete in one and a create in the other, so
that is kept rare on purpose; `mesh shards` says what moves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from mesh.compile.meta import IMPORTS_NAMESPACE
from mesh.manifest.egress_rules import EXTERNAL_NAMESPACE

MAX_PARTS = 32
# Labels naming what an imported or external entry is for: every object of one unit carries it.
_UNIT_LABELS = ("fleet-mesh.io/service", "fleet-mesh.io/external")
_CONFIG_ONLY = (IMPORTS_NAMESPACE, EXTERNAL_NAMESPACE)
Obj = TypeVar("Obj", bound=Mapping[str, Any])


def unit_of(obj: Mapping[str, Any], service_namespaces: frozenset[str]) -> str | None:
    """The unit an object moves with, or None for the cluster's shared objects (kept by part 1)."""
    metadata = obj["metadata"]
    if obj["kind"] == "Namespace":
        return f"namespace/{metadata['name']}" if metadata["name"] in service_namespaces else None
    namespace = metadata.get("namespace")
    if namespace in service_namespaces:
        return f"namespace/{namespace}"
    if namespace in _CONFIG_ONLY:
        labels = metadata.get("labels") or {}
        identity = next((labels[key] for key in _UNIT_LABELS if key in labels), metadata["name"])
        return f"{namespace}/{identity}"
    return None


def service_namespaces(objects: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The cluster's compiled Namespaces other than the config-only ones: where its services run."""
    return frozenset(o["metadata"]["name"] for o in objects
                     if o["kind"] == "Namespace" and o["metadata"]["name"] not in _CONFIG_ONLY)


def part_of(unit: str | None, of: int) -> int:
    """Rendezvous hashing: the part whose hash with the unit is highest (1 for shared objects)."""
    if unit is None or of == 1:
        return 1
    return max(range(1, of + 1), key=lambda part: hashlib.sha256(f"{unit}#{part}".encode()).digest())


def split(objects: Sequence[Obj], of: int) -> list[list[Obj]]:
    """Objects of parts 1..of, each in the compiled order."""
    namespaces = service_namespaces(objects)
    parts: list[list[Obj]] = [[] for _ in range(of)]
    units: dict[str | None, int] = {}
    for obj in objects:
        unit = unit_of(obj, namespaces)
        if unit not in units:
            units[unit] = part_of(unit, of)
        parts[units[unit] - 1].append(obj)
    return parts


def select(objects: Sequence[Obj], part: int, of: int) -> list[Obj]:
    return split(objects, of)[part - 1]


def parts_needed(objects: Sequence[Mapping[str, Any]], limit: int, owner_extra: int,
                 part_extra: int, fewest: int = 1) -> tuple[int, list[int]] | None:
    """The fewest parts whose stacks all stay under `limit` (part 1 carries `owner_extra` resources of
    infrastructure, the others `part_extra`), with each part's size; None if MAX_PARTS do not do, or
    the cluster's shared objects alone are too many (no split moves those). Never fewer than
    `fewest`: a split in use is not undone, which would move objects between existing parts."""
    namespaces = service_namespaces(objects)
    if sum(1 for o in objects if unit_of(o, namespaces) is None) + owner_extra > limit:
        return None
    for of in range(max(1, fewest), MAX_PARTS + 1):
        sizes = [len(p) + (owner_extra if i == 0 else part_extra) for i, p in enumerate(split(objects, of))]
        if max(sizes) <= limit:
            return of, sizes
    return None
