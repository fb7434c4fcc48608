"""The fleet as a graph: services, where they run, and who calls whom (JSON or Mermaid)."""

from __future__ import annotations

import json
from typing import Any

from mesh.model import World


def as_data(world: World) -> dict[str, Any]:
    """A JSON-ready description of the fleet; stable keys, sorted lists."""
    return {
        "clusters": [
            {
                "name": c.name,
                "region": c.region,
                "network": c.network,
                "tier": c.tier,
                "services": list(world.views[c.name].running),
            }
            for c in world.clusters.values()
        ],
        "services": [
            {
                "name": s.name,
                "host": s.host,
                "namespace": s.namespace,
                "tier": s.tier,
                "ports": [{"name": p.name, "number": p.number, "protocol": p.protocol} for p in s.ports],
                "locations": [
                    {"cluster": p.cluster, "role": p.role, **({"weight": p.weight} if p.weight is not None else {})}
                    for p in world.placements[s.name]
                ],
            }
            for s in world.services.values()
        ],
        "calls": [
            {"from": c.caller, "to": c.callee, "ports": list(c.ports) if c.ports else None}
            for c in world.calls
        ],
    }


def as_json(world: World) -> str:
    return json.dumps(as_data(world), indent=2) + "\n"


def as_mermaid(world: World) -> str:
    """Clusters grouped by region, a node per service per cluster; each call drawn from every
    caller instance to the callee in the same cluster if it runs there, else to every remote one."""
    lines = ["flowchart LR"]
    regions: dict[str, list[str]] = {}
    for cluster in world.clusters.values():
        regions.setdefault(cluster.region, []).append(cluster.name)
    for region, clusters in sorted(regions.items()):
        lines.append(f"  subgraph {_id('region', region)}[\"{region}\"]")
        for name in clusters:
            spec = world.clusters[name]
            lines.append(f"    subgraph {_id('cluster', name)}[\"{name} · {spec.network} · {spec.tier}\"]")
            lines += [f"      {_id(name, s)}[\"{s}\"]" for s in world.views[name].running]
            lines.append("    end")
        lines.append("  end")
    for call in world.calls:
        callee_clusters = world.clusters_of(call.callee)
        for source in world.clusters_of(call.caller):
            targets = [source] if source in callee_clusters else list(callee_clusters)
            arrow = "-->" if targets == [source] else "-.->"
            lines += [f"  {_id(source, call.caller)} {arrow} {_id(t, call.callee)}" for t in targets]
    return "\n".join(lines) + "\n"


def _id(scope: str, name: str) -> str:
    return f"{scope}__{name}".replace("-", "_")
