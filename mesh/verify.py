"""Static checks over compiled output: Istio's rules for replicated control planes, and minimality.

Run before anything is applied (notes/istio.md §10). Two families:
- correctness: the same host, port numbers and names in every cluster; MESH_INTERNAL; exports that
  reach the east-west gateway and every local caller; gateways listing every served host; remote
  endpoints at an address on 15443 in the remote cluster's network; ejection that lets failover
  happen; no `tls.sni`; one Sidecar per namespace; every namespaced object's namespace created;
  an ingress Gateway terminating TLS 1.2+ on 443 for hosts only its own namespace may bind, and one
  gateway-bound route per published service, to that service's public host on its published port;
- minimality: nothing a cluster could do without (config for a service it neither runs nor calls,
  endpoints nobody here dials, exposure nobody elsewhere needs, ingress routes for services that do
  not run here, a Namespace where nothing runs — services called but not run here share the
  config-only `mesh-imports`, their objects exported exactly to their callers' namespaces, and
  each Sidecar imports exactly its services' calls from the namespace holding each entry).
- egress beyond the mesh: an approved external destination's config (ServiceEntry `MESH_EXTERNAL`,
  TLS origination, the egress gateway's Gateway, subsets, routes and authorization) exactly where
  and for whom calls are declared — hosts, ports, exports, Sidecar imports and admitted principals
  neither short of the calls nor beyond them.

"Dialled here" means a local caller, or this cluster's ingress gateway for a service it publishes;
a service published in several clusters is exposed east-west, so each ingress can fail over.

Returns problems as sentences; an empty list means the output holds both promises.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mesh import locality_lb
from mesh.compile import egress, ingress, meta
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
    running_namespaces = {world.namespace_of[s] for s in view.running}
    expected_namespaces = set(running_namespaces)
    if any(world.role_in(s, cluster) is None for s in view.needed):
        expected_namespaces.add(meta.IMPORTS_NAMESPACE)
    if world.external_callers(cluster):
        expected_namespaces.add(egress.EXTERNAL_NAMESPACE)
    if namespaces != expected_namespaces:
        yield f"namespaces {sorted(namespaces ^ expected_namespaces)} missing or unneeded"
    for obj in by_kind["Namespace"]:
        labels = obj["metadata"].get("labels", {})
        injected = "istio-injection" in labels or "istio.io/rev" in labels
        if injected != (obj["metadata"]["name"] in running_namespaces):
            yield f"Namespace {obj['metadata']['name']} is labelled for injection exactly where workloads run: " \
                  f"{'it is' if injected else 'it is not'}"
    ingress_namespace = world.fleet.ingress_gateway.namespace
    for obj in objects:
        namespace = obj["metadata"].get("namespace")
        if namespace == ingress_namespace and obj["kind"] in INGRESS_KINDS:
            continue  # the gateway's install creates its namespace, not the compiler
        if namespace == egress.EGRESS_NAMESPACE and obj["kind"] in EGRESS_KINDS:
            continue  # likewise the egress gateway's
        if namespace not in (None, meta.ISTIO_SYSTEM) and namespace not in namespaces:
            yield f"{obj['kind']} {namespace}/{obj['metadata']['name']} is in a namespace never created"
    mesh_kinds: dict[str, list[Obj]] = defaultdict(list)
    mesh_kinds.update({kind: [o for o in items if _mesh_object(o)] for kind, items in by_kind.items()})
    yield from _externals(world, cluster, by_kind)
    yield from _entries(world, cluster, mesh_kinds["ServiceEntry"], shapes)
    yield from _endpoints(world, cluster, mesh_kinds)
    yield from _rules(world, cluster, mesh_kinds["DestinationRule"])
    yield from _locality_weights(world, cluster, mesh_kinds)
    yield from _gateway(world, cluster, [g for g in by_kind["Gateway"]
                                         if g["spec"]["selector"] == meta.EASTWEST_SELECTOR])
    yield from _ingress_gateway(world, cluster, [g for g in by_kind["Gateway"]
                                                 if g["spec"]["selector"] == ingress.SELECTOR])
    yield from _ingress_routes(world, cluster, [v for v in mesh_kinds["VirtualService"] if "gateways" in v["spec"]])
    yield from _layout(world, cluster, mesh_kinds)
    sidecars = Counter(o["metadata"]["namespace"] for o in by_kind["Sidecar"])
    yield from (f"namespace {ns} has {n} Sidecars" for ns, n in sorted(sidecars.items()) if n > 1)
    for kind in ("Sidecar", "AuthorizationPolicy"):
        stray = {o["metadata"]["namespace"] for o in mesh_kinds[kind]} - running_namespaces
        yield from (f"{kind} in {ns}, where nothing runs" for ns in sorted(stray))


def config_namespace(world: World, cluster: str, service: str) -> str:
    """Where a service's entry, rule and route belong in `cluster`: its own namespace where it runs
    (its entry selects pods and WorkloadEntries there), else `mesh-imports` — where Istio looks for
    the rule after the caller's namespace (the entry's namespace is the service's)."""
    return world.namespace_of[service] if world.role_in(service, cluster) is not None else meta.IMPORTS_NAMESPACE


def _layout(world: World, cluster: str, by_kind: Mapping[str, list[Obj]]) -> Iterator[str]:
    """Each service's objects in their one namespace; imports visible only to their callers; each
    Sidecar importing exactly its services' callees, from where their entries live."""
    view = world.views[cluster]
    for kind in ("ServiceEntry", "DestinationRule", "VirtualService", "WorkloadEntry"):
        for obj in by_kind[kind]:
            if "gateways" in obj["spec"]:
                continue  # ingress routes: `_ingress_routes`
            metadata = obj["metadata"]
            service = metadata["labels"][meta.SERVICE_LABEL]
            where = config_namespace(world, cluster, service)
            if metadata["namespace"] != where:
                yield f"{kind} {metadata['namespace']}/{metadata['name']} belongs in {where}"
            elif where == meta.IMPORTS_NAMESPACE:
                callers = sorted({world.namespace_of[c] for c in view.local_callers.get(service, ())})
                if kind == "WorkloadEntry" or obj["spec"].get("exportTo") != callers:
                    yield f"{kind} {where}/{metadata['name']} is exported to {obj['spec'].get('exportTo')}, " \
                          f"not exactly its callers' namespaces {callers}"
    config_only = (meta.ISTIO_SYSTEM + "/", "./", egress.EXTERNAL_NAMESPACE + "/", egress.EGRESS_NAMESPACE + "/")
    for sidecar in by_kind["Sidecar"]:
        namespace = sidecar["metadata"]["namespace"]
        imported = {h for e in sidecar["spec"]["egress"] for h in e["hosts"] if not h.startswith(config_only)}
        wanted = {f"{config_namespace(world, cluster, call.callee)}/{world.services[call.callee].host}"
                  for s in view.running if world.namespace_of[s] == namespace for call in world.callees(s)}
        if imported != wanted:
            yield f"Sidecar {namespace}/default imports {sorted(imported ^ wanted)} against the calls"


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
        if _exposed(world, service, cluster):
            wanted.add(meta.ISTIO_SYSTEM)
        if _publishes(world, service, cluster):
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
        dialled = _dialled(world, cluster, service)
        if not dialled or count != expected:
            yield f"{count} remote endpoints for {service}, nothing here needs them" if not dialled \
                else f"{count} remote endpoints for {service}, expected {expected}"
    for service in view.running:
        if _dialled(world, cluster, service) and not counts[service] and len(world.clusters_of(service)) > 1:
            yield f"no remote endpoints for {service}: callers here could not fail over"


def _rules(world: World, cluster: str, rules: list[Obj]) -> Iterator[str]:
    for rule in rules:
        service = rule["metadata"]["labels"][meta.SERVICE_LABEL]
        policy = rule["spec"]["trafficPolicy"]
        outlier = policy.get("outlierDetection", {})
        if outlier.get("maxEjectionPercent") != 100 or "minHealthPercent" not in outlier:
            yield f"DestinationRule {service}: ejection must reach 100% and minHealthPercent be explicit"
        if "sni" in policy.get("tls", {}) or policy.get("tls", {}).get("mode") != "ISTIO_MUTUAL":
            yield f"DestinationRule {service}: tls must be ISTIO_MUTUAL without sni"
        if not _dialled(world, cluster, service):
            yield f"DestinationRule {service} serves no caller here"
    found = {r["metadata"]["labels"][meta.SERVICE_LABEL] for r in rules}
    missing = sorted(s for s in world.views[cluster].running if _publishes(world, s, cluster) and s not in found)
    yield from (f"no DestinationRule for {s}: the ingress gateway would neither use mTLS nor fail over"
                for s in missing)


def _locality_weights(world: World, cluster: str, by_kind: Mapping[str, list[Obj]]) -> Iterator[str]:
    """Istio's admission rules for every localityLbSetting, and for weighted services the split:
    locality weights (never priorities or subsets) under which each cluster running the service
    gets its weight — give or take a point per zone — and a weight-0 cluster nothing. Local pods
    are `region/zone/<cluster>` per zone (node label `topology.istio.io/subzone`); remote clusters
    are where their endpoints say."""
    remote: dict[str, dict[str, str]] = defaultdict(dict)  # service → endpoint locality → cluster
    for service, endpoint in _remote_endpoints(by_kind):
        remote[service][endpoint.get("locality", "")] = endpoint.get("network", "")
    for rule in by_kind["DestinationRule"]:
        service = rule["metadata"]["labels"][meta.SERVICE_LABEL]
        setting = rule["spec"]["trafficPolicy"].get("loadBalancer", {}).get("localityLbSetting", {})
        yield from (f"DestinationRule {service}: Istio rejects its localityLbSetting: {p}"
                    for p in locality_lb.problems(setting))
        distribute = bool(setting.get("distribute"))
        if distribute != world.is_weighted(service):
            yield f"DestinationRule {service}: locality weights exactly for weighted services"
        if not distribute:
            continue
        if setting.get("failover") or setting.get("failoverPriority") or rule["spec"].get("subsets"):
            yield f"DestinationRule {service}: locality weights with priorities or subsets (Istio ignores them)"
        owner = {locality_lb.split(loc): c for loc, c in remote[service].items()}
        slack = 1  # a zone needs at least 1 point: a cluster with fewer points than zones borrows
        if world.role_in(service, cluster) is not None:
            spec = world.clusters[cluster]
            owner.update({(spec.region, zone, cluster): cluster for zone in spec.zones})
            slack = max(len(spec.zones), 1)
        given = locality_lb.group_weights(setting, ("", "", ""), dict.fromkeys(owner, 1)) or {}
        got: Counter[str] = Counter()
        for group, weight in given.items():
            got[owner[group]] += weight
        for placement in world.placements[service]:
            wanted = placement.weight or 0
            if (got[placement.cluster] == 0) != (wanted == 0) or abs(got[placement.cluster] - wanted) >= slack:
                yield f"DestinationRule {service}: {placement.cluster} gets locality weight " \
                      f"{got[placement.cluster]}, not its {wanted}"


def _remote_endpoints(by_kind: Mapping[str, list[Obj]]) -> list[tuple[str, Mapping[str, Any]]]:
    remote: list[tuple[str, Mapping[str, Any]]] = [
        (o["metadata"]["labels"][meta.SERVICE_LABEL], o["spec"]) for o in by_kind["WorkloadEntry"]
    ]
    for entry in by_kind["ServiceEntry"]:
        service = entry["metadata"]["labels"][meta.SERVICE_LABEL]
        remote += [(service, e) for e in entry["spec"].get("endpoints", [])]
    return remote


def _gateway(world: World, cluster: str, gateways: list[Obj]) -> Iterator[str]:
    view = world.views[cluster]
    served = sorted(world.services[s].host for s in view.running if _exposed(world, s, cluster))
    hosts = [h for g in gateways for s in g["spec"]["servers"] for h in s["hosts"]]
    if sorted(hosts) != served:
        yield f"east-west gateway hosts {sorted(set(hosts) ^ set(served))} missing or unneeded"
    if len(gateways) > 1:
        yield "more than one east-west Gateway (15443 listeners would conflict)"


def _ingress_gateway(world: World, cluster: str, gateways: list[Obj]) -> Iterator[str]:
    namespace = world.fleet.ingress_gateway.namespace
    published = sorted(f"{namespace}/{h}" for h in _published_hosts(world, cluster))
    if not published:
        yield from (f"ingress Gateway {g['metadata']['name']} where no service is published" for g in gateways)
        return
    if [(g["metadata"]["namespace"], g["metadata"]["name"]) for g in gateways] != [(namespace, ingress.GATEWAY_NAME)]:
        yield f"expected one ingress Gateway {namespace}/{ingress.GATEWAY_NAME}"
    servers = [s for g in gateways for s in g["spec"]["servers"]]
    for server in servers:
        port, tls = server["port"], server.get("tls", {})
        if (port["number"], port["protocol"]) != (ingress.PORT, "HTTPS"):
            yield f"ingress server {port['name']} is not HTTPS on {ingress.PORT}, the load balancer's only port"
        if tls.get("mode") != "SIMPLE" or not tls.get("credentialName") or \
                tls.get("minProtocolVersion") not in ("TLSV1_2", "TLSV1_3"):
            yield f"ingress server {port['name']} must terminate TLS 1.2+ with a platform credential"
    names = Counter(s["port"]["name"] for s in servers)
    yield from (f"ingress servers share port name {n} (Istio names their routes after it)"
                for n, c in sorted(names.items()) if c > 1)
    hosts = sorted(h for s in servers for h in s["hosts"])
    if hosts != published:
        yield f"ingress gateway hosts {sorted(set(hosts) ^ set(published))} missing, unneeded or bindable from " \
              "other namespaces"


def _ingress_routes(world: World, cluster: str, routes: list[Obj]) -> Iterator[str]:
    namespace = world.fleet.ingress_gateway.namespace
    wanted = {world.services[s].host: s for s in world.views[cluster].running if _publishes(world, s, cluster)}
    seen: Counter[str] = Counter()
    for route in routes:
        spec, where = route["spec"], f"{route['metadata'].get('namespace')}/{route['metadata']['name']}"
        host = spec["hosts"][0] if len(spec["hosts"]) == 1 else None
        seen[host or where] += 1
        service = wanted.get(host or "")
        if service is None:
            yield f"gateway-bound VirtualService {where} routes no service published here"
            continue
        if route["metadata"].get("namespace") != namespace or spec["gateways"] != [ingress.gateway_ref(world.fleet)]:
            yield f"VirtualService {where} must live in {namespace} and bind only {ingress.gateway_ref(world.fleet)}"
        if spec.get("exportTo") != ["."]:
            yield f"VirtualService {where} must be visible to the ingress namespace only"
        port = ingress.published_port(world.services[service])
        for http in spec.get("http", []):
            for destination in http["route"]:
                if destination["destination"]["host"] != host or \
                        destination["destination"].get("port", {}).get("number") != (port.number if port else None):
                    yield f"VirtualService {where} does not route to {host} on its published port"
    for host, service in sorted(wanted.items()):
        if seen[host] != 1:
            yield f"{seen[host]} ingress routes for {service}, expected 1"


INGRESS_KINDS = ("Gateway", "VirtualService")
EGRESS_KINDS = ("Gateway", "DestinationRule", "AuthorizationPolicy")


def _mesh_object(obj: Obj) -> bool:
    """Not part of the way out of the mesh (those are checked by `_externals`)."""
    return obj["metadata"].get("namespace") not in (egress.EXTERNAL_NAMESPACE, egress.EGRESS_NAMESPACE)


def _externals(world: World, cluster: str, by_kind: Mapping[str, list[Obj]]) -> Iterator[str]:
    """External destinations: exactly what the calls from here need, visible to exactly their callers."""
    called = world.external_callers(cluster)
    namespace_of = world.namespace_of
    gateway_names = sorted(n for n in called if world.externals[n].egress_gateway)
    gateway_ns = {namespace_of[c.caller] for n in gateway_names for c in called[n]}

    def objects(kind: str, namespace: str) -> dict[str, Obj]:
        return {o["metadata"]["name"]: o for o in by_kind[kind] if o["metadata"].get("namespace") == namespace}

    entries = objects("ServiceEntry", egress.EXTERNAL_NAMESPACE)
    if sorted(entries) != sorted(called):
        yield f"external ServiceEntries {sorted(set(entries) ^ set(called))} missing or unneeded"
    imports: dict[str, set[str]] = defaultdict(set)
    for name, calls in called.items():
        ext = world.externals[name]
        callers = sorted({namespace_of[c.caller] for c in calls})
        hosts = sorted({h for c in calls for h in c.hosts})
        ports = sorted(p.number for p in egress.ports_of(ext, calls))
        for call in calls:
            imports[namespace_of[call.caller]].update(f"{egress.EXTERNAL_NAMESPACE}/{h}" for h in call.hosts)
        entry = entries.get(name)
        if entry is None:
            continue
        spec = entry["spec"]
        if spec["location"] != "MESH_EXTERNAL":
            yield f"external ServiceEntry {name} is not MESH_EXTERNAL"
        if sorted(spec["hosts"]) != hosts or sorted(p["number"] for p in spec["ports"]) != ports:
            yield f"external ServiceEntry {name} has hosts {spec['hosts']} / ports, not exactly the called ones"
        wanted = {"*"} if ext.all_workloads else set(callers)
        wanted |= {egress.EGRESS_NAMESPACE} if ext.egress_gateway and not ext.all_workloads else set()
        if set(spec["exportTo"]) != wanted:
            yield f"external ServiceEntry {name} is exported to {spec['exportTo']}, not exactly {sorted(wanted)}"
        if spec["resolution"] == "DNS" and (spec.get("addresses") or any(h.startswith("*") for h in spec["hosts"])):
            yield f"external ServiceEntry {name} resolves wildcards or fixed addresses by DNS"
    for sidecar in by_kind["Sidecar"]:
        namespace = sidecar["metadata"]["namespace"]
        imported = {h for e in sidecar["spec"]["egress"] for h in e["hosts"]}
        if {h for h in imported if h.startswith(egress.EXTERNAL_NAMESPACE + "/")} != imports.get(namespace, set()):
            yield f"Sidecar {namespace}/default imports external hosts not exactly the called ones"
        if any(h.startswith(egress.EGRESS_NAMESPACE + "/") for h in imported) != (namespace in gateway_ns):
            yield f"Sidecar {namespace}/default imports the egress gateway without need, or lacks it"
    for rule in objects("DestinationRule", egress.EXTERNAL_NAMESPACE).values():
        name = rule["metadata"]["labels"].get(egress.EXTERNAL_LABEL, "")
        settings = rule["spec"]["trafficPolicy"].get("portLevelSettings", [])
        if name not in called or not world.externals[name].originate_tls:
            yield f"DestinationRule {egress.EXTERNAL_NAMESPACE}/{rule['metadata']['name']} originates TLS for no caller"
        elif any(s["tls"] != {"mode": "SIMPLE", "sni": rule["spec"]["host"]} for s in settings):
            yield f"DestinationRule {egress.EXTERNAL_NAMESPACE}/{rule['metadata']['name']} must originate SIMPLE TLS " \
                  "with the host as SNI"
    routes = objects("VirtualService", egress.EXTERNAL_NAMESPACE)
    gateways = objects("Gateway", egress.EGRESS_NAMESPACE)
    policies = objects("AuthorizationPolicy", egress.EGRESS_NAMESPACE)
    gateway_rules = objects("DestinationRule", egress.EGRESS_NAMESPACE)
    if sorted(routes) != gateway_names:
        yield f"egress VirtualServices {sorted(set(routes) ^ set(gateway_names))} missing or unneeded"
    expected = [egress.GATEWAY_NAME] if gateway_names else []
    if sorted(gateways) != expected or sorted(gateway_rules) != expected:
        yield "egress Gateway and its DestinationRule must exist exactly where calls leave through it"
    wanted_policies = [f"{n}-callers" for n in gateway_names] + (["default-deny"] if gateway_names else [])
    if sorted(policies) != sorted(wanted_policies):
        yield "egress gateway authorization must be default-deny plus one policy per destination leaving here"
    for rule in gateway_rules.values():
        for subset in rule["spec"]["subsets"]:
            for setting in subset["trafficPolicy"]["portLevelSettings"]:
                if setting["tls"].get("mode") != "ISTIO_MUTUAL" or not setting["tls"].get("sni"):
                    yield f"egress gateway subset {subset['name']} must use ISTIO_MUTUAL with the host as SNI"
    for gateway in gateways.values():
        for server in gateway["spec"]["servers"]:
            if server["tls"].get("mode") != "ISTIO_MUTUAL" or not all(
                    h.startswith(egress.EXTERNAL_NAMESPACE + "/") for h in server["hosts"]):
                yield f"egress gateway server {server['port']['name']} must terminate Istio mTLS for " \
                      f"{egress.EXTERNAL_NAMESPACE} hosts only"
    for name in gateway_names:
        policy = policies.get(f"{name}-callers")
        if policy is None:
            continue
        principals = {p for r in policy["spec"]["rules"] for f in r["from"] for p in f["source"]["principals"]}
        wanted_principals = {f"{world.fleet.trust_domain}/ns/{namespace_of[c.caller]}/sa/"
                             f"{world.services[c.caller].service_account}" for c in called[name]}
        if principals != wanted_principals:
            yield f"egress gateway admits {sorted(principals ^ wanted_principals)} for {name}, against the calls"
        [host] = world.externals[name].hosts
        if any(r.get("when") != [{"key": "connection.sni", "values": [host]}] for r in policy["spec"]["rules"]):
            yield f"egress gateway policy {name}-callers must match the SNI {host} in every rule"


def _publishes(world: World, service: str, cluster: str) -> bool:
    """Does `cluster`'s ingress gateway route to `service`? Wherever it runs, if it is published."""
    return world.role_in(service, cluster) is not None and ingress.published_port(world.services[service]) is not None


def _published_hosts(world: World, cluster: str) -> list[str]:
    return [world.services[s].host for s in world.views[cluster].running if _publishes(world, s, cluster)]


def _dialled(world: World, cluster: str, service: str) -> bool:
    return service in world.views[cluster].local_callers or _publishes(world, service, cluster)


def _exposed(world: World, service: str, cluster: str) -> bool:
    if world.role_in(service, cluster) is None:
        return False
    return world.has_callers_elsewhere(service, cluster) or (
        _publishes(world, service, cluster) and len(world.clusters_of(service)) > 1)


def _is_address(value: str) -> bool:
    if value.endswith(PLACEHOLDER_SUFFIX):
        return True  # render mode only; the Pulumi program substitutes reserved addresses
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
