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
from mesh.infra.plan import (
    INFRA_PER_CLUSTER,
    INFRA_PER_PART,
    STACK_RESOURCE_LIMIT,
    nat_owners,
    remote_callers,
    stack_resources,
)
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


@dataclass(frozen=True)
class Layout:
    """Stack files already written (names without the prefix): who holds each cluster's mesh config
    part ((cluster, 1): the stack managing it), and into how many parts each split cluster is cut."""

    holder: Mapping[tuple[str, int], str] = dataclasses.field(default_factory=dict)
    split: Mapping[str, int] = dataclasses.field(default_factory=dict)
    stacks: frozenset[str] = frozenset()  # every stack file read, whatever it holds: names not to reuse

    def managing(self) -> dict[str, list[str]]:
        """Stack -> the clusters it manages, for the stacks that manage any."""
        out: dict[str, list[str]] = {}
        for (cluster, part), stack in sorted(self.holder.items()):
            if part == 1:
                out.setdefault(stack, []).append(cluster)
        return out


def propose(world: World, compiled: Mapping[str, Sequence[Any]], by: str = "cluster",
            limit: int = STACK_RESOURCE_LIMIT, keep: Layout | None = None) -> list[Shard]:
    """Stacks under `limit`. With `keep` (the stack files already written) every cluster stays in
    the stack managing it and a split cluster keeps at least its parts, so that a re-run after the
    fleet grew moves nothing but what must: new clusters fill the room left, or new stacks."""
    keep = keep or Layout()
    reads = Reads.of(world)
    size = sizes(world, compiled, reads)
    shards: list[Shard] = []
    packed = _pack(world, size, by, limit, keep)
    taken = {name for name, _ in packed} | set(keep.holder.values()) | keep.stacks
    for name, members in packed:
        cluster = members[0]
        if len(members) == 1 and (size[cluster] > limit or keep.split.get(cluster, 1) > 1):
            references = size[cluster] - len(compiled[cluster]) - INFRA_PER_CLUSTER
            shards.extend(_split(name, cluster, compiled[cluster], limit, references, keep, taken))
        else:
            shards.append(Shard(name, tuple(sorted(members)), sum(size[c] for c in members)))
    assert len({s.name for s in shards}) == len(shards), "two proposed stacks share a name"
    # Sizes above count a reference per cluster read; the stacks read fewer (one per shard).
    read = peers(shards, compiled, reads)
    return [dataclasses.replace(s, reads=tuple(read[s.name]), resources=stack_resources(
        len(objects_of(s, compiled)), len(s.clusters), s.part_only, len(read[s.name]))) for s in shards]


def _pack(world: World, size: Mapping[str, int], by: str, limit: int, keep: Layout) -> list[tuple[str, list[str]]]:
    """(stack, clusters it manages), by name: the kept stacks with their clusters still in the
    fleet, then the other clusters grouped by `by` and packed first-fit-decreasing, into a kept
    stack of their group with room or new ones. A cluster over the limit gets a stack alone."""
    def key_of(cluster: str) -> str:
        spec = world.clusters[cluster]
        return {"cluster": cluster, "region": spec.region, "tier": spec.tier}[by]

    bins = {stack: [c for c in clusters if c in world.clusters] for stack, clusters in keep.managing().items()}
    bins = {stack: members for stack, members in bins.items() if members}
    placed = {c for members in bins.values() for c in members}
    groups: dict[str, list[str]] = {}
    for cluster in world.clusters:  # sorted by name
        if cluster not in placed:
            groups.setdefault(key_of(cluster), []).append(cluster)
    for key, members in sorted(groups.items()):
        # A stack alone with a cluster over the limit (or split) takes nobody: part 1 stays alone.
        open_bins = [bins[stack] for stack in sorted(bins) if all(key_of(c) == key for c in bins[stack])
                     and not (len(bins[stack]) == 1 and size[bins[stack][0]] > limit)
                     and not keep.split.get(bins[stack][0], 1) > 1]
        fresh: list[list[str]] = []
        for cluster in sorted(members, key=lambda c: (-size[c], c)):
            fitting = None if size[cluster] > limit else next(
                (b for b in [*open_bins, *fresh] if sum(size[c] for c in b) + size[cluster] <= limit), None)
            if fitting is None:
                fresh.append([cluster])
            else:
                fitting.append(cluster)
        taken = set(bins) | set(keep.holder.values()) | keep.stacks  # part stacks' names are taken too
        names = iter([key] if len(fresh) == 1 and key not in taken else
                     (f"{key}-{i}" for i in range(1, len(fresh) + len(taken) + 2) if f"{key}-{i}" not in taken))
        for members_of_bin in fresh:
            bins[next(names)] = members_of_bin
    return sorted(bins.items())


def _split(stack: str, cluster: str, objects: Sequence[Any], limit: int, references: int,
           keep: Layout, taken: set[str]) -> list[Shard]:
    """The cluster's stack (part 1) and its part stacks: the fewest parts that fit, never fewer than
    it has; a split in use that no longer fits stays as it is, reported over the limit."""
    owner_extra, part_extra = INFRA_PER_CLUSTER + references, INFRA_PER_PART + references + 1  # + its owner
    kept = keep.split.get(cluster, 1)
    found = parts.parts_needed(objects, limit, owner_extra, part_extra, fewest=kept)
    if found is None and kept == 1:
        return [Shard(stack, (cluster,), len(objects) + owner_extra)]  # reported as over the limit
    if found is None:
        cut = parts.split(objects, kept)
        found = kept, [len(p) + (owner_extra if i == 0 else part_extra) for i, p in enumerate(cut)]
    of, part_sizes = found
    names = [stack]
    for part in range(2, of + 1):
        name = keep.holder.get((cluster, part))
        if name is None:  # a new part: a name no other stack has
            name = next(n for n in (f"{cluster}-part-{part}", *(f"{cluster}-part-{part}-{i}" for i in range(2, 99)))
                        if n not in taken)
            taken.add(name)
        names.append(name)
    return [Shard(names[part - 1], (cluster,) if part == 1 else (), part_sizes[part - 1], Split(cluster, part, of))
            for part in range(1, of + 1)]


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


def report(shards: Sequence[Shard], limit: int, by: str, kept: int = 0) -> str:
    grouping = f"{kept} kept from the stack files there, the others by {by}" if kept else f"by {by}"
    lines = [f"{len(shards)} stacks ({grouping}), limit {limit:,} resources each:"]
    for shard in shards:
        what = ", ".join(shard.clusters)
        if shard.split:
            what = (f"{shard.split.cluster}: " if shard.part_only else f"{what}, ") + (
                f"mesh config part {shard.split.part} of {shard.split.of}")
        flag = ""
        if shard.over(limit):
            flag = (f"  over the limit: no split into up to {parts.MAX_PARTS} parts fits" if len(shard.clusters) < 2
                    else "  over the limit: its clusters are kept together (moving one to another stack moves its "
                         "GKE cluster and control plane: do that by hand, then re-run)")
        lines.append(f"  {shard.name:32} {shard.resources:7,}  {what}{flag}")
    return "\n".join(lines)
