"""`mesh shards`: a split of the fleet into stacks that each stay under a resource limit (pure).

Past a few thousand resources Pulumi's engine slows down badly (a 1.3k-resource stack took minutes
to preview, pulumi/pulumi#7682), so a large fleet runs as several stacks from the same program.
A stack's size is estimated from what it declares: every compiled object of its clusters plus each
cluster's infrastructure (`INFRA_PER_CLUSTER`). Clusters are grouped by the chosen key (each cluster
alone, or by region or tier), then packed first-fit-decreasing into stacks under the limit; names
and order are deterministic. A cluster that alone exceeds the limit has its mesh config split into
the fewest parts that fit (`mesh.infra.parts`): its own stack keeps part 1 with the cluster's
infrastructure and shared objects, and each further part is a stack of its own that manages no
cluster. Only a cluster no split brings under the limit is left over it, and reported.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mesh.infra import parts
from mesh.infra.plan import INFRA_PER_CLUSTER, INFRA_PER_PART, STACK_RESOURCE_LIMIT, nat_owners, remote_callers
from mesh.model import World
from mesh.render import unresolved_addresses

KEYS = ("cluster", "region", "tier")
_PER_SHARD = ("mesh:clusters", "mesh:peerStacks", "mesh:decommission", "mesh:meshConfigPart")
# Secrets are encrypted per stack: a value copied from another stack's file would not decrypt.
SECRET_KEYS = ("mesh:rootCaKey",)
# What a stack holding part 2+ of a cluster's mesh config reads; the rest of the base config is
# about clusters it does not manage.
PART_KEYS = ("mesh:manifest", "mesh:istioVersion", "mesh:istioRevisions")


@dataclass(frozen=True)
class Split:
    cluster: str
    part: int
    of: int


@dataclass(frozen=True)
class Shard:
    name: str
    clusters: tuple[str, ...]  # whose infrastructure (and whole mesh config, unless split) it manages
    resources: int
    split: Split | None = None  # the part of one cluster's mesh config it holds, for a split cluster
    reads: tuple[str, ...] = ()  # the shards whose outputs it reads (`peers`)

    def over(self, limit: int) -> bool:
        return self.resources > limit

    @property
    def part_only(self) -> bool:
        return self.split is not None and self.split.part > 1


@dataclass(frozen=True)
class Reads:
    """Which clusters a stack reads from others: those whose east-west addresses its objects hold,
    and those owning the Cloud NAT that its clusters' remote callers leave from (its east-west
    firewall admits exactly those addresses)."""

    callers: Mapping[str, tuple[tuple[str, str], ...]]
    nat: Mapping[tuple[str, str], str]

    @classmethod
    def of(cls, world: World) -> Reads:
        return cls(remote_callers(world, set(world.clusters)), nat_owners(world))

    def clusters(self, objects: Sequence[Any], managed: Sequence[str]) -> set[str]:
        held = {placeholder.split(".")[0] for placeholder in unresolved_addresses({"": list(objects)})}
        return (held | {self.nat[caller] for cluster in managed for caller in self.callers[cluster]}) - set(managed)


def sizes(world: World, compiled: Mapping[str, Sequence[Any]], reads: Reads | None = None) -> dict[str, int]:
    """Resources of a stack managing one cluster: its objects, its infrastructure and a stack
    reference per cluster it reads (a bound: one per stack read)."""
    reads = reads or Reads.of(world)
    return {cluster: len(objects) + INFRA_PER_CLUSTER + len(reads.clusters(objects, [cluster]))
            for cluster, objects in compiled.items()}


def propose(world: World, compiled: Mapping[str, Sequence[Any]], by: str = "cluster",
            limit: int = STACK_RESOURCE_LIMIT) -> list[Shard]:
    reads = Reads.of(world)
    size = sizes(world, compiled, reads)
    groups: dict[str, list[str]] = {}
    for name, spec in world.clusters.items():  # sorted by name
        key = {"cluster": name, "region": spec.region, "tier": spec.tier}[by]
        groups.setdefault(key, []).append(name)
    shards: list[Shard] = []
    for key, members in sorted(groups.items()):
        bins: list[list[str]] = []
        oversized = [c for c in members if size[c] > limit]
        for cluster in sorted(set(members) - set(oversized), key=lambda c: (-size[c], c)):
            fitting = next((b for b in bins if sum(size[c] for c in b) + size[cluster] <= limit), None)
            if fitting is None:
                bins.append([cluster])
            else:
                fitting.append(cluster)
        for i, members_of_bin in enumerate(bins):
            name = key if len(bins) == 1 else f"{key}-{i + 1}"
            shards.append(Shard(name, tuple(sorted(members_of_bin)), sum(size[c] for c in members_of_bin)))
        for cluster in oversized:
            references = size[cluster] - len(compiled[cluster]) - INFRA_PER_CLUSTER
            shards.extend(_split(cluster, compiled[cluster], size[cluster], limit, references))
    # Sizes above count a reference per cluster read; the stacks read fewer (one per shard).
    read = peers(shards, compiled, reads)
    return [dataclasses.replace(s, resources=len(objects_of(s, compiled)) + len(read[s.name]) + (
        INFRA_PER_PART if s.part_only else INFRA_PER_CLUSTER * len(s.clusters)), reads=tuple(read[s.name]))
            for s in shards]


def _split(cluster: str, objects: Sequence[Any], size: int, limit: int, references: int) -> list[Shard]:
    # A part reads at most what the whole cluster reads, plus the stack managing the cluster.
    found = parts.parts_needed(objects, limit, INFRA_PER_CLUSTER + references, INFRA_PER_PART + references + 1)
    if found is None:
        return [Shard(cluster, (cluster,), size)]  # reported as over the limit
    of, part_sizes = found
    return [Shard(cluster if part == 1 else f"{cluster}-part-{part}", (cluster,) if part == 1 else (),
                  part_sizes[part - 1], Split(cluster, part, of)) for part in range(1, of + 1)]


def objects_of(shard: Shard, compiled: Mapping[str, Sequence[Any]]) -> list[Any]:
    if shard.split is None:
        return [obj for cluster in shard.clusters for obj in compiled[cluster]]
    return parts.select(compiled[shard.split.cluster], shard.split.part, shard.split.of)


def peers(shards: Sequence[Shard], compiled: Mapping[str, Sequence[Any]], reads: Reads) -> dict[str, list[str]]:
    """The shards each one reads, and no others: every stack reference costs a resource and a read
    of that stack's outputs on every run, and a hundred shards each reading all the others would
    make that a third of what they hold. A part also reads the stack managing its cluster."""
    manager = {cluster: s.name for s in shards for cluster in s.clusters}
    out = {}
    for shard in shards:
        wanted = {manager[cluster] for cluster in reads.clusters(objects_of(shard, compiled), shard.clusters)}
        if shard.split is not None:
            wanted.add(manager[shard.split.cluster])
        wanted.discard(shard.name)
        out[shard.name] = sorted(wanted)
    return out


def stack_files(shards: Sequence[Shard], base: Mapping[str, Any], org: str, project: str,
                prefix: str) -> dict[str, str]:
    """`Pulumi.<prefix>-<shard>.yaml` per shard: the base stack's config, its clusters, its peers."""
    names = {s.name: f"{prefix}-{s.name}" for s in shards}
    files = {}
    for shard in shards:
        name = names[shard.name]
        peer_stacks = [f"{org}/{project}/{names[peer]}" for peer in shard.reads]
        split = shard.split
        if split is not None and split.part > 1:
            config = {k: v for k, v in base.items() if not k.startswith("mesh:") or k in PART_KEYS}
            what = f"part {split.part} of {split.of} of {split.cluster}'s mesh config"
            note = "# It manages no cluster and needs no secret; apply it after the stack managing the cluster.\n"
        else:
            config = {k: v for k, v in base.items() if k not in SECRET_KEYS and k not in _PER_SHARD}
            config["mesh:clusters"] = list(shard.clusters)
            decommission = [c for c in base.get("mesh:decommission", []) if c in shard.clusters]
            if decommission:
                config["mesh:decommission"] = decommission
            what = f"{len(shard.clusters)} cluster(s)" + (f", part 1 of {split.of} of its mesh config" if split else "")
            note = ("# Secrets are per stack: set the shared root CA's key with\n"
                    f"#   pulumi config set --secret mesh:rootCaKey --stack {name} < root-ca.key\n")
        if split:
            config["mesh:meshConfigPart"] = {"cluster": split.cluster, "part": split.part, "of": split.of}
        if peer_stacks:
            config["mesh:peerStacks"] = peer_stacks
        body = json.dumps({"config": dict(sorted(config.items()))}, indent=2, sort_keys=True)
        files[f"Pulumi.{name}.yaml"] = (f"# Stack {name}: {shard.resources:,} resources (estimated) for {what}. "
                                        "Written by `mesh shards`.\n" + note + body + "\n")
    return files


def report(shards: Sequence[Shard], limit: int, by: str) -> str:
    lines = [f"{len(shards)} stacks by {by}, limit {limit:,} resources each:"]
    for shard in shards:
        what = ", ".join(shard.clusters)
        if shard.split:
            what = (f"{shard.split.cluster}: " if shard.part_only else f"{what}, ") + (
                f"mesh config part {shard.split.part} of {shard.split.of}")
        flag = f"  over the limit: no split into up to {parts.MAX_PARTS} parts fits" if shard.over(limit) else ""
        lines.append(f"  {shard.name:32} {shard.resources:7,}  {what}{flag}")
    return "\n".join(lines)


def existing_layout(configs: Mapping[str, Mapping[str, Any]]) -> tuple[dict[tuple[str, int], str], dict[str, int]]:
    """From stack files already written (stack -> its `mesh:` values): (cluster, part) -> stack, and
    into how many parts each cluster's mesh config is split."""
    holder: dict[tuple[str, int], str] = {}
    split: dict[str, int] = {}
    for stack, config in sorted(configs.items()):
        part = config.get("mesh:meshConfigPart")
        if isinstance(part, dict):
            holder[(str(part.get("cluster")), int(part.get("part", 1)))] = stack
            split[str(part.get("cluster"))] = int(part.get("of", 1))
        for cluster in config.get("mesh:clusters") or []:
            holder.setdefault((cluster, 1), stack)
    return holder, split


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


def _managers(after: Sequence[Shard], prefix: str) -> dict[tuple[str, int], str]:
    """(cluster, part) -> the stack a proposal gives it (part 1: the stack managing the cluster)."""
    out = {(cluster, 1): f"{prefix}-{s.name}" for s in after for cluster in s.clusters}
    out.update({(s.split.cluster, s.split.part): f"{prefix}-{s.name}" for s in after if s.split})
    return out


def cluster_moves(before: tuple[dict[tuple[str, int], str], dict[str, int]], after: Sequence[Shard],
                  prefix: str) -> list[tuple[str, str, str]]:
    """(cluster, from, to) for each cluster the proposal gives another managing stack than today's:
    its GKE cluster, control plane and share of the networks would move, which is not a state move
    of mesh objects."""
    holder = before[0]
    proposed = sorted(_managers(after, prefix).items())
    return [(cluster, holder[(cluster, 1)], stack) for (cluster, part), stack in proposed
            if part == 1 and (cluster, 1) in holder and holder[(cluster, 1)] != stack]


def moves(before: tuple[dict[tuple[str, int], str], dict[str, int]], after: Sequence[Shard],
          compiled: Mapping[str, Sequence[Any]], prefix: str) -> list[Move]:
    """What changes stacks when a cluster's split changes: each such object is a delete in one stack
    and a create in the other unless its state is moved first (`cluster_moves` must be empty)."""
    from mesh.infra.mesh_config import resource_name, resource_type

    holder, split = before
    new_holder = _managers(after, prefix)
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
    return [Move(source, dest, cluster, tuple(resource_name(cluster, o) for o in objs),
                 tuple(resource_type(o) for o in objs)) for (source, dest, cluster), objs in sorted(found.items())]
