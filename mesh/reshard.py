"""From the stack files `mesh shards --write` finds in its folder to a new proposal (pure).

What may change between two runs: new clusters join stacks, a split cluster gains parts. Each
object a new part takes is a delete in its old stack and a create in the new one unless its state
is moved first (`pulumi state move`); `moves` lists them with their URNs. A cluster changing its
managing stack would move its GKE cluster and control plane: `cluster_moves` names it, and the
command then writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mesh.infra import parts
from mesh.shards import Layout, Shard


def existing_layout(configs: Mapping[str, Mapping[str, Any]], prefix: str) -> Layout:
    """From the stack files already written (`<prefix>-<name>` -> its config), who holds what."""
    holder: dict[tuple[str, int], str] = {}
    split: dict[str, int] = {}
    for stack, config in sorted(configs.items()):
        name = stack.removeprefix(f"{prefix}-")
        part = config.get("mesh:meshConfigPart")
        if isinstance(part, dict):
            holder[(str(part.get("cluster")), int(part.get("part", 1)))] = name
            split[str(part.get("cluster"))] = int(part.get("of", 1))
        for cluster in config.get("mesh:clusters") or []:
            holder.setdefault((cluster, 1), name)
    return Layout(holder, split, frozenset(stack.removeprefix(f"{prefix}-") for stack in configs))


@dataclass(frozen=True)
class Move:
    """Mesh objects that a new sharding gives to another stack than the one holding them now."""

    source: str
    dest: str
    cluster: str
    names: tuple[str, ...]  # resource names (`mesh_config.resource_name`)
    types: tuple[str, ...]  # their Pulumi types, in the same order

    def urns(self, project: str) -> list[str]:
        return [f"urn:pulumi:{self.source}::{project}::fleet-mesh:mesh:Config${kind}::{name}"
                for kind, name in zip(self.types, self.names, strict=True)]


def _holders(after: Sequence[Shard]) -> dict[tuple[str, int], str]:
    """(cluster, part) -> the stack a proposal gives it (part 1: the stack managing the cluster)."""
    out = {(cluster, 1): s.name for s in after for cluster in s.clusters}
    out.update({(s.split.cluster, s.split.part): s.name for s in after if s.split})
    return out


def cluster_moves(before: Layout, after: Sequence[Shard], prefix: str) -> list[tuple[str, str, str]]:
    """(cluster, from, to) for each cluster the proposal gives another managing stack than today's:
    its GKE cluster, control plane and share of the networks would move, which is not a state move
    of mesh objects. `propose(keep=...)` proposes none; a hand-edited folder may."""
    holder = before.holder
    return [(cluster, f"{prefix}-{holder[(cluster, 1)]}", f"{prefix}-{stack}")
            for (cluster, part), stack in sorted(_holders(after).items())
            if part == 1 and (cluster, 1) in holder and holder[(cluster, 1)] != stack]


def moves(before: Layout, after: Sequence[Shard], compiled: Mapping[str, Sequence[Any]], prefix: str) -> list[Move]:
    """What changes stacks when a cluster's split grows: each such object is a delete in one stack
    and a create in the other unless its state is moved first (`cluster_moves` must be empty)."""
    from mesh.infra.mesh_config import resource_name, resource_type

    holder, split = before.holder, before.split
    new_holder = _holders(after)
    new_split = {s.split.cluster: s.split.of for s in after if s.split}
    found: dict[tuple[str, str, str], list[Any]] = {}
    for cluster, objects in compiled.items():
        old_of, new_of = split.get(cluster, 1), new_split.get(cluster, 1)
        if old_of == new_of == 1 or (cluster, 1) not in holder:
            continue
        namespaces = parts.service_namespaces(objects)
        for obj in objects:
            unit = parts.unit_of(obj, namespaces)
            source = holder.get((cluster, parts.part_of(unit, old_of)))
            dest = new_holder[(cluster, parts.part_of(unit, new_of))]
            if source is not None and source != dest:
                found.setdefault((source, dest, cluster), []).append(obj)
    return [Move(f"{prefix}-{source}", f"{prefix}-{dest}", cluster, tuple(resource_name(cluster, o) for o in objs),
                 tuple(resource_type(o) for o in objs)) for (source, dest, cluster), objs in sorted(found.items())]


def script(moved: Sequence[Move], project: str, existing: set[str]) -> str:
    """`state-moves.sh`: each move as `pulumi state move`, after `pulumi stack init` of a destination
    that does not exist yet (the command needs it). Moving the state keeps the objects in place;
    applying instead, the gaining stack's create fails (the object exists) and the losing stack's
    delete removes it, so either order loses something for a while."""
    lines = ["#!/bin/sh", "# Written by `mesh shards --write`: the moves from the stack files it replaced to the new",
             "# ones. Run it before `pulumi up` on any stack it names, and before the next `mesh shards --write`.",
             "set -eu"]
    created = set(existing)
    for move in moved:
        if move.dest not in created:
            lines.append(f"pulumi stack init {move.dest}")
            created.add(move.dest)
        urns = move.urns(project)
        lines.append(f"pulumi state move --yes --source {move.source} --dest {move.dest} \\")
        lines += [f"  '{urn}' \\" for urn in urns[:-1]] + [f"  '{urns[-1]}'"]
    return "\n".join(lines) + "\n"
