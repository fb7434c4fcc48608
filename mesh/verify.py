"""Static checks over compiled output: Istio's rules for replicated control planes, and minimality.

Run before anything is applied (notes/istio.md §10). Two families:
- correctness: the same host, port numbers and names in every cluster; MESH_INTERNAL; exports that
  reach the east-west gateway and every local caller; gateways listing every served host; remote
  endpoints at an address on 15443 in the remote cluster's network; ejection that lets failover
  happen; no `tls.sni`; one Sidecar per namespace; every namespaced object's namespace created;
- minimality: nothing a cluster could do without (config for a service it neither runs nor calls,
  endpoints nobody here dials, exposure nobody elsewhere needs).

Returns problems as sentences; an empty list means the output holds both promises.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mesh.compile import meta
from mesh.model import PLACEHOLDER_SUFFIX, World

Obj = Mapping[str, Any]


def verify(world: World, compiled: Mapping[str, Sequence[Obj]]) -> list[str]:
    problems: list[str] = []
    shapes: dict[str, set[str]] = defaultdict(set)
    for cluster, objects in compiled.items():
        problems += [f"{cluster}: {p}" for p in _cluster(world, cluster, objects, shapes)]
    problems += [f"{host}: differs between clusters: {sorted(seen)}" for host, seen in sorted(shapes.items())
                 if len(seen) > 1]
    return problems


def _cluster(world: World, cluster: str, objects: Sequence[Obj], shapes: dict[str, set[str]]) -> Iterator[str]:
    view = world.views[cluster]
    by_kind: dict[str, list[Obj]] = defaultdict(list)
    for obj in objects:
        by_kind[obj["kind"]].append(obj)
    identities = Counter((o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objects)
    yield from (f"{kind} {ns}/{name} is emitted {count} times" for (kind, ns, name), count in
                sorted(identities.items()) if count > 1)
    namespaces = {o["metadata"]["name"] for o in by_kind["Namespace"]}
    expected_namespaces = {world.namespace_of[s] for s in view.needed}
    if namespaces != expected_namespaces:
        yield f"namespaces {sorted(namespaces ^ expected_namespaces)} missing or unneeded"
    for obj in objects:
        namespace = obj["metadata"].get("namespace")
        if namespace not in (None, meta.ISTIO_SYSTEM) and namespace not in namespaces:
            yield f"{obj['kind']} {namespace}/{obj['metadata']['name']} is in a namespace never created"
    yield from _entries(world, cluster, by_kind["ServiceEntry"], shapes)
    yield from _endpoints(world, cluster, by_kind)
    yield from _rules(world, cluster, by_kind["DestinationRule"])
    yield from _gateway(world, cluster, by_kind["Gateway"])
    sidecars = Counter(o["metadata"]["namespace"] for o in by_kind["Sidecar"])
    yield from (f"namespace {ns} has {n} Sidecars" for ns, n in sorted(sidecars.items()) if n > 1)
    running_namespaces = {world.namespace_of[s] for s in view.running}
    for kind in ("Sidecar", "AuthorizationPolicy"):
        stray = {o["metadata"]["namespace"] for o in by_kind[kind]} - running_namespaces
        yield from (f"{kind} in {ns}, where nothing runs" for ns in sorted(stray))


def _entries(world: World, cluster: str, entries: list[Obj], shapes: dict[str, set[str]]) -> Iterator[str]:
    view = world.views[cluster]
    found = set()
    for entry in entries:
        spec, service = entry["spec"], entry["metadata"]["labels"][meta.SERVICE_LABEL]
        found.add(service)
        shapes[spec["hosts"][0]].add(repr((spec["hosts"], [(p["number"], p["name"]) for p in spec["ports"]])))
        if spec["location"] != "MESH_INTERNAL":
            yield f"ServiceEntry {service} is not MESH_INTERNAL"
        export = set(spec["exportTo"])
        wanted = {world.namespace_of[c] for c in view.local_callers.get(service, ())}
        if world.role_in(service, cluster) and world.has_callers_elsewhere(service, cluster):
            wanted.add(meta.ISTIO_SYSTEM)
        if world.role_in(service, cluster) and world.services[service].ingress:
            wanted.add(world.fleet.ingress_gateway.namespace)
        if not wanted <= export:
            yield f"ServiceEntry {service} is not exported to {sorted(wanted - export)}"
        if ("workloadSelector" in spec) == ("endpoints" in spec):
            yield f"ServiceEntry {service} needs exactly one of workloadSelector and endpoints"
    if found != set(view.needed):
        yield f"ServiceEntries missing or unneeded: {sorted(found ^ set(view.needed))}"


def _endpoints(world: World, cluster: str, by_kind: Mapping[str, list[Obj]]) -> Iterator[str]:
    view = world.views[cluster]
    remote: list[tuple[str, Mapping[str, Any]]] = [
        (o["metadata"]["labels"][meta.SERVICE_LABEL], o["spec"]) for o in by_kind["WorkloadEntry"]
    ]
    for entry in by_kind["ServiceEntry"]:
        service = entry["metadata"]["labels"][meta.SERVICE_LABEL]
        remote += [(service, e) for e in entry["spec"].get("endpoints", [])]
    counts: Counter[str] = Counter()
    for service, endpoint in remote:
        counts[service] += 1
        network = endpoint.get("network")
        if network not in world.clusters or network == cluster:
            yield f"endpoint of {service} has network {network!r}, not another cluster's"
        if set(endpoint["ports"].values()) != {meta.EASTWEST_PORT}:
            yield f"endpoint of {service} does not map every port to {meta.EASTWEST_PORT}"
        if not endpoint.get("locality") or endpoint.get("labels", {}).get(meta.TLS_MODE_LABEL) != "istio":
            yield f"endpoint of {service} lacks locality or the istio tlsMode label"
        if not _is_address(endpoint["address"]):
            yield f"endpoint of {service} has address {endpoint['address']!r}, not an IP"
    for service, count in sorted(counts.items()):
        expected = len(world.clusters_of(service)) - (1 if world.role_in(service, cluster) else 0)
        if service not in view.local_callers or count != expected:
            yield f"{count} remote endpoints for {service}, nothing here needs them" if service not in \
                view.local_callers else f"{count} remote endpoints for {service}, expected {expected}"


def _rules(world: World, cluster: str, rules: list[Obj]) -> Iterator[str]:
    view = world.views[cluster]
    for rule in rules:
        service = rule["metadata"]["labels"][meta.SERVICE_LABEL]
        policy = rule["spec"]["trafficPolicy"]
        outlier = policy.get("outlierDetection", {})
        if outlier.get("maxEjectionPercent") != 100 or "minHealthPercent" not in outlier:
            yield f"DestinationRule {service}: ejection must reach 100% and minHealthPercent be explicit"
        if "sni" in policy.get("tls", {}) or policy.get("tls", {}).get("mode") != "ISTIO_MUTUAL":
            yield f"DestinationRule {service}: tls must be ISTIO_MUTUAL without sni"
        needed = service in view.local_callers or (
            world.is_weighted(service) and world.role_in(service, cluster) is not None
            and world.has_callers_elsewhere(service, cluster))
        if not needed:
            yield f"DestinationRule {service} serves no caller here"


def _gateway(world: World, cluster: str, gateways: list[Obj]) -> Iterator[str]:
    view = world.views[cluster]
    served = sorted(world.services[s].host for s in view.running if world.has_callers_elsewhere(s, cluster))
    hosts = [h for g in gateways for s in g["spec"]["servers"] for h in s["hosts"]]
    if sorted(hosts) != served:
        yield f"east-west gateway hosts {sorted(set(hosts) ^ set(served))} missing or unneeded"
    if len(gateways) > 1:
        yield "more than one east-west Gateway (15443 listeners would conflict)"


def _is_address(value: str) -> bool:
    if value.endswith(PLACEHOLDER_SUFFIX):
        return True  # render mode only; the Pulumi program substitutes reserved addresses
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
