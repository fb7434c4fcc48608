"""The fleet as a graph: services, where they run, who calls whom, and what is called outside the mesh."""

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
        "externals": [
            {
                "name": e.name,
                "hosts": list(e.hosts),
                "ports": [{"number": p.number, "protocol": p.protocol} for p in e.ports],
                "addresses": list(e.addresses),
                "egressGateway": e.egress_gateway,
                "originateTls": e.originate_tls,
                "allWorkloads": e.all_workloads,
                "clusters": list(world.external_clusters(e.name)),
            }
            for e in world.externals.values()
        ],
        "externalCalls": [
            {"from": c.caller, "to": c.external, "hosts": list(c.hosts), "ports": list(c.ports) if c.ports else None}
            for c in world.external_calls if not world.externals[c.external].all_workloads
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
    if world.externals:
        lines.append('  subgraph outside["outside the mesh"]')
        lines += [f"    {_id('external', e.name)}[/\"{_external_label(e, ' · ')}\"/]" for e in world.externals.values()]
        lines.append("  end")
    for ext_call in world.external_calls:
        if not world.externals[ext_call.external].all_workloads:
            lines += [f"  {_id(c, ext_call.caller)} -.-> {_id('external', ext_call.external)}"
                      for c in world.clusters_of(ext_call.caller)]
    return "\n".join(lines) + "\n"


def _external_label(external: Any, sep: str) -> str:
    ports = ",".join(str(p.number) for p in external.ports)
    how = ["egress gateway"] if external.egress_gateway else []
    how += ["every workload"] if external.all_workloads else []
    return sep.join([f"{'/'.join(external.hosts)}:{ports}", *how])


def _id(scope: str, name: str) -> str:
    return f"{scope}__{name}".replace("-", "_")


# ------------------------------------------------------------------------------------- Graphviz

def as_dot(world: World) -> str:
    """Graphviz: regions contain clusters (labelled with network and tier) contain services;
    a call is solid inside a cluster and dashed across clusters (through east-west gateways)."""
    return _dot(_edges(world), world, world, {}, {}, externals=True)


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
    if not nodes:  # an empty picture would read as a rendering failure
        return ('digraph fleet {\n  fontname=Helvetica;\n  "no changes" [shape=plaintext, fontname=Helvetica, '
                'label="no changes to calls or placements"];\n}\n')
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
         marks: dict[Any, str], only: dict[tuple[str, str], str], externals: bool = False) -> str:
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
            if not (marks or only) and any(cluster in (s[0], t[0]) and s[0] != t[0] for s, t in edges):
                lines.append(f'      "{cluster}/{EAST_WEST}" [label="{EAST_WEST}", shape=cds, style=filled, '
                             'fillcolor=gray90, fontsize=9];')
            for service in services:
                colour = _COLOURS.get(only.get((cluster, service), ""), "black")
                label = service + _placement_note(after if service in after.placements else before, service, cluster)
                lines.append(f'      "{cluster}/{service}" [label="{label}", color={colour}, fontcolor={colour}];')
            lines.append("    }")
        lines.append("  }")
    lines += _edge_lines(edges, marks, bundle=not (marks or only))
    if externals:
        lines += _external_dot(after)
    lines += _LEGEND_DIFF if marks or only else _LEGEND
    lines.append("}")
    return "\n".join(lines) + "\n"


def _placement_note(world: World, service: str, cluster: str) -> str:
    """A weight or a standby role, drawn under the service's name (primary and plain say nothing)."""
    for placement in world.placements.get(service, ()):
        if placement.cluster == cluster:
            if placement.weight is not None:
                return f"\\n{placement.weight}%"
            if placement.role == "standby":
                return "\\nstandby"
    return ""


def _edge_lines(edges: set[tuple[tuple[str, str], tuple[str, str]]], marks: dict[Any, str],
                bundle: bool) -> list[str]:
    """Calls inside a cluster one by one. Calls to another cluster, in the fleet picture, go the way
    the traffic does: caller → its cluster's east-west node ⇢ the other cluster's east-west node
    (one arrow per pair of clusters, labelled with how many calls) → callee. In a diff every call
    stays its own arrow, since only the changed ones are drawn."""
    lines = []
    leaving: set[tuple[str, str]] = set()
    arriving: set[tuple[str, str]] = set()
    pairs: dict[tuple[str, str], int] = {}
    for source, target in sorted(edges):
        colour = _COLOURS.get(marks.get((source, target), ""), "black")
        if source[0] == target[0]:
            lines.append(f'  "{source[0]}/{source[1]}" -> "{target[0]}/{target[1]}" [style=solid, color={colour}];')
        elif not bundle:
            lines.append(f'  "{source[0]}/{source[1]}" -> "{target[0]}/{target[1]}" [style=dashed, color={colour}];')
        else:
            leaving.add(source)
            arriving.add(target)
            pairs[(source[0], target[0])] = pairs.get((source[0], target[0]), 0) + 1
    lines += [f'  "{c}/{s}" -> "{c}/{EAST_WEST}" [style=dashed, color=gray50, arrowsize=0.5];'
              for c, s in sorted(leaving)]
    lines += [f'  "{a}/{EAST_WEST}" -> "{b}/{EAST_WEST}" [style=dashed, penwidth=1.5, xlabel="{n} call{"s" * (n > 1)}",'
              f' fontsize=9];' for (a, b), n in sorted(pairs.items())]
    lines += [f'  "{c}/{EAST_WEST}" -> "{c}/{s}" [style=dashed, color=gray50, arrowsize=0.5];'
              for c, s in sorted(arriving)]
    return lines


EAST_WEST = "east-west gateway"


_LEGEND = [
    '  subgraph "cluster_legend" { label="legend"; style=dotted; fontsize=10;',
    '    legend [shape=plaintext, fontsize=10, label="solid: call inside a cluster\\l'
    'dashed: calls between clusters, through their east-west gateways (N calls per pair of clusters)\\l'
    'dotted: call outside the mesh (blue: through the egress gateway)\\l'
    'N%: weighted location   standby: takes traffic only when no primary is healthy\\l"];',
    "  }",
]
_LEGEND_DIFF = [
    '  subgraph "cluster_legend" { label="legend"; style=dotted; fontsize=10;',
    '    legend [shape=plaintext, fontsize=10, label="green: added   red: removed   gray: unchanged context\\l'
    'solid: inside a cluster   dashed: through an east-west gateway\\l"];',
    "  }",
]


def _external_dot(world: World) -> list[str]:
    """Destinations outside the mesh, apart from the clusters; calls to them dotted (blue through the
    egress gateway). An `allWorkloads` destination is labelled so instead of drawn from every service."""
    if not world.externals:
        return []
    lines = ['  subgraph "cluster_outside" { label="outside the mesh"; style=dotted;']
    newline = "\\n"  # Graphviz's line break inside a label
    lines += [f'    "external/{e.name}" [label="{e.name}{newline}{_external_label(e, newline)}", shape=component];'
              for e in world.externals.values()]
    lines.append("  }")
    for call in world.external_calls:
        external = world.externals[call.external]
        if external.all_workloads:
            continue
        colour = "blue" if external.egress_gateway else "black"
        lines += [f'  "{c}/{call.caller}" -> "external/{call.external}" [style=dotted, color={colour}];'
                  for c in world.clusters_of(call.caller)]
    return lines


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
