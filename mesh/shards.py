"""`mesh shards`: a split of the fleet into stacks that each stay under a resource limit (pure).

Past a few thousand resources Pulumi's engine slows down badly (a 1.3k-resource stack took minutes
to preview, pulumi/pulumi#7682), so a large fleet runs as several stacks from the same program.
A stack's size is estimated from what it declares: every compiled object of its clusters plus each
cluster's infrastructure (`INFRA_PER_CLUSTER`). Clusters are grouped by the chosen key (each cluster
alone, or by region or tier), then packed first-fit-decreasing into stacks under the limit; names
and order are deterministic. A cluster that alone exceeds the limit gets a stack of its own and is
reported: splitting one cluster's mesh config over several stacks is not supported yet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mesh.infra.plan import INFRA_PER_CLUSTER, STACK_RESOURCE_LIMIT
from mesh.model import World

KEYS = ("cluster", "region", "tier")
# Secrets are encrypted per stack: a value copied from another stack's file would not decrypt.
SECRET_KEYS = ("mesh:rootCaKey",)


@dataclass(frozen=True)
class Shard:
    name: str
    clusters: tuple[str, ...]
    resources: int

    def over(self, limit: int) -> bool:
        return self.resources > limit


def sizes(compiled: Mapping[str, Sequence[Any]]) -> dict[str, int]:
    return {cluster: len(objects) + INFRA_PER_CLUSTER for cluster, objects in compiled.items()}


def propose(world: World, compiled: Mapping[str, Sequence[Any]], by: str = "cluster",
            limit: int = STACK_RESOURCE_LIMIT) -> list[Shard]:
    size = sizes(compiled)
    groups: dict[str, list[str]] = {}
    for name, spec in world.clusters.items():  # sorted by name
        key = {"cluster": name, "region": spec.region, "tier": spec.tier}[by]
        groups.setdefault(key, []).append(name)
    shards: list[Shard] = []
    for key, members in sorted(groups.items()):
        bins: list[list[str]] = []
        for cluster in sorted(members, key=lambda c: (-size[c], c)):
            fitting = next((b for b in bins if sum(size[c] for c in b) + size[cluster] <= limit), None)
            if fitting is None:
                bins.append([cluster])
            else:
                fitting.append(cluster)
        for i, members_of_bin in enumerate(bins):
            name = key if len(bins) == 1 else f"{key}-{i + 1}"
            shards.append(Shard(name, tuple(sorted(members_of_bin)), sum(size[c] for c in members_of_bin)))
    return shards


def stack_files(shards: Sequence[Shard], base: Mapping[str, Any], org: str, project: str,
                prefix: str) -> dict[str, str]:
    """`Pulumi.<prefix>-<shard>.yaml` per shard: the base stack's config, its clusters, its peers."""
    names = {s.name: f"{prefix}-{s.name}" for s in shards}
    files = {}
    for shard in shards:
        config = {k: v for k, v in base.items() if k not in SECRET_KEYS and k not in ("mesh:clusters",
                                                                                      "mesh:peerStacks")}
        config["mesh:clusters"] = list(shard.clusters)
        config["mesh:peerStacks"] = [f"{org}/{project}/{names[s.name]}" for s in shards if s is not shard]
        body = json.dumps({"config": dict(sorted(config.items()))}, indent=2, sort_keys=True)
        note = (f"# Stack {names[shard.name]}: {shard.resources:,} resources (estimated) for "
                f"{len(shard.clusters)} cluster(s). Written by `mesh shards`.\n"
                "# Secrets are per stack: set the shared root CA's key with\n"
                f"#   pulumi config set --secret mesh:rootCaKey --stack {names[shard.name]} < root-ca.key\n")
        files[f"Pulumi.{names[shard.name]}.yaml"] = note + body + "\n"
    return files


def report(shards: Sequence[Shard], limit: int, by: str) -> str:
    lines = [f"{len(shards)} stacks by {by}, limit {limit:,} resources each:"]
    for shard in shards:
        flag = "  over the limit: one cluster's mesh config cannot be split yet" if shard.over(limit) else ""
        lines.append(f"  {shard.name:32} {shard.resources:7,}  {', '.join(shard.clusters)}{flag}")
    return "\n".join(lines)
