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


# ------------------------------------------------------------------------------------- Graphviz

def as_dot(world: World) -> str:
    """Graphviz: regions contain clusters (labelled with network and tier) contain services;
    a call is solid inside a cluster and dashed across clusters (through east-west gateways)."""
    return _dot(_edges(world), world, world, {}, {})


def diff_dot(before: World, after: World) -> str:
    """Only what changed: calls and placements added (green) or removed (red), with their ends."""
    old, new = _edges(before), _edges(after)
    marks = {e: "added" for e in new - old} | {e: "removed" for e in old - new}
    nodes: dict[tuple[str, str], str] = {}
    for edge in marks:
        nodes.setdefault(edge[0], "context")
        nodes.setdefault(edge[1], "context")
    old_nodes, new_nodes = _placed(before), _placed(after)
    nodes |= {n: "added" for n in new_nodes - old_nodes} | {n: "removed" for n in old_nodes - new_nodes}
    return _dot(set(marks), before, after, marks, nodes)


_COLOURS = {"added": "darkgreen", "removed": "red3", "context": "gray40"}


def _placed(world: World) -> set[tuple[str, str]]:
    return {(c, s) for c, view in world.views.items() for s in view.running}


def _edges(world: World) -> set[tuple[tuple[str, str], tuple[str, str]]]:
    edges = set()
    for call in world.calls:
        callee_clusters = world.clusters_of(call.callee)
        for source in world.clusters_of(call.caller):
            targets = [source] if source in callee_clusters else list(callee_clusters)
            edges |= {((source, call.caller), (t, call.callee)) for t in targets}
    return edges


def _dot(edges: set[tuple[tuple[str, str], tuple[str, str]]], before: World, after: World,
         marks: dict[Any, str], only: dict[tuple[str, str], str]) -> str:
    clusters = {**before.clusters, **after.clusters}
    nodes = set(only) if only else _placed(after)
    lines = ["digraph fleet {", "  rankdir=LR; compound=true; fontname=Helvetica;",
             "  node [shape=box, style=rounded, fontname=Helvetica]; edge [fontname=Helvetica];"]
    by_region: dict[str, dict[str, list[str]]] = {}
    for cluster, service in sorted(nodes):
        by_region.setdefault(clusters[cluster].region, {}).setdefault(cluster, []).append(service)
    for region, members in sorted(by_region.items()):
        lines.append(f'  subgraph "cluster_region_{region}" {{ label="{region}"; style=dashed;')
        for cluster, services in sorted(members.items()):
            spec = clusters[cluster]
            lines.append(f'    subgraph "cluster_{cluster}" {{ label="{cluster}\\n{spec.network} · {spec.tier}"; '
                         'style="rounded"; bgcolor="gray97";')
            for service in services:
                colour = _COLOURS.get(only.get((cluster, service), ""), "black")
                lines.append(f'      "{cluster}/{service}" [label="{service}", color={colour}, fontcolor={colour}];')
            lines.append("    }")
        lines.append("  }")
    for (source, target) in sorted(edges):
        style = "solid" if source[0] == target[0] else "dashed"
        colour = _COLOURS.get(marks.get((source, target), ""), "black")
        lines.append(f'  "{source[0]}/{source[1]}" -> "{target[0]}/{target[1]}" [style={style}, color={colour}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


class GraphvizMissing(Exception):
    """Graphviz's `dot` is needed for SVG output."""


def to_svg(dot: str) -> str:
    import shutil
    import subprocess

    binary = shutil.which("dot")
    if binary is None:
        raise GraphvizMissing("SVG needs Graphviz's `dot` (Debian/Ubuntu: apt-get install graphviz); "
                              "--format dot prints the graph source instead")
    return subprocess.run([binary, "-Tsvg"], input=dot, capture_output=True, text=True, check=True).stdout
