"""Where does a call end, and is it allowed? Answered from compiled objects, the way Istio would.

Given every cluster's objects and the facts the objects do not hold (which workloads run where, which
address belongs to which cluster's east-west gateway, each cluster's locality), `resolve` follows one
call as a sidecar, a remote east-west gateway and a destination sidecar would:

1. caller's Sidecar: is the host imported into the caller's namespace (REGISTRY_ONLY otherwise)?
2. ServiceEntry visible to that namespace, with the called port;
3. VirtualService (imported from its namespace, like the entry): weighted subsets, if any; the
   DestinationRule found where Istio looks: the proxy's namespace, the entry's, the root namespace;
4. endpoints: local pods selected by the entry, WorkloadEntries in its namespace, inline endpoints;
   grouped into Envoy priorities by the DestinationRule's `failoverPriority`, as Istio does;
5. a remote endpoint must be a cluster's east-west address whose Gateway lists the host and whose
   own ServiceEntry (same host, port number and name, exported to istio-system) selects pods there;
6. the destination's AuthorizationPolicies must allow the caller's principal on the port.

`resolve_ingress` follows a request arriving at a cluster's ingress gateway on 443 instead: a
Gateway server selecting the gateway's pods must list the host (in a namespace that may bind it), a
VirtualService there bound to that Gateway routes it, and from its destination on the call goes as
from a caller in the ingress namespace with the gateway's identity — gateways have no Sidecar.

`resolve_external` follows a call to a destination outside the mesh: the caller's Sidecar must import
it from a visible `MESH_EXTERNAL` ServiceEntry with the port; a VirtualService may send it to the
egress gateway (whose Sidecar import, `ISTIO_MUTUAL` subset with the host as SNI, Gateway server,
gateway-side route and authorization are then followed in turn); otherwise it leaves from the
sidecar, with TLS originated where a DestinationRule says `SIMPLE` for the port.

It checks the configuration, not the model: tests compare its answers with what the manifest says.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mesh import locality_lb
from mesh.compile import egress, meta
from mesh.model import World, address_placeholder

Obj = Mapping[str, Any]
# An endpoint before routing: its labels, (region, zone, subzone), the cluster it leads to, what is wrong.
Candidate = tuple[dict[str, str], locality_lb.Locality, str, str | None]


@dataclass(frozen=True)
class Workload:
    """Pods of one service in one cluster: the fact the configuration refers to by labels."""

    cluster: str
    namespace: str
    labels: Mapping[str, str]
    service_account: str


# What the ingress gateway's install provides (Istio's `gateway` chart, release istio-ingressgateway):
# its pods' labels, and the one port its load balancer forwards.
INGRESS_POD_LABELS: Mapping[str, str] = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
INGRESS_PORT = 443
EGRESS_POD_LABELS: Mapping[str, str] = {"app": egress.GATEWAY_RELEASE, **egress.GATEWAY_SELECTOR}


@dataclass(frozen=True)
class Fleet:
    """Facts outside the compiled objects."""

    workloads: tuple[Workload, ...]
    addresses: Mapping[str, str]  # east-west address → cluster owning it
    localities: Mapping[str, tuple[str, str]]  # cluster → (region, zone) of its callers' pods
    trust_domain: str
    ingress_gateways: tuple[Workload, ...] = ()  # the ingress gateway's pods, one per cluster installed
    egress_gateways: tuple[Workload, ...] = ()  # the egress gateway's pods, one per cluster installed
    # cluster → the zones its pods run in (default: its callers' zone); every node carries the
    # subzone label `topology.istio.io/subzone: <cluster>`, so pods group per (region, zone, cluster)
    zones: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    cluster: str  # the cluster whose pods finally serve the call
    priority: int  # Envoy priority: 0 first; a level takes traffic when all before it are out
    weight: int | None  # VirtualService weight of its subset, when the service is split
    allowed: bool  # the destination's authorization admits the caller
    problem: str | None = None  # why this endpoint would fail, if it would
    locality: str = ""  # its locality group, region/zone/subzone
    locality_weight: int | None = None  # the DestinationRule's `distribute` weight of that group
    local: bool = False  # the caller's own cluster's pods (one group per zone), not a remote gateway


@dataclass(frozen=True)
class Outcome:
    """What happens to a call: refused before leaving (with a reason), or its endpoints."""

    refused: str | None = None
    endpoints: tuple[Endpoint, ...] = field(default_factory=tuple)

    @property
    def clusters(self) -> set[str]:
        return {e.cluster for e in self.endpoints}

    @property
    def works(self) -> bool:
        return self.refused is None and bool(self.endpoints) and all(
            e.allowed and e.problem is None for e in self.endpoints
        )


@dataclass(frozen=True)
class ExternalOutcome:
    """What happens to a call to an external destination."""

    refused: str | None = None  # why it never leaves the mesh
    via_gateway: bool = False  # it leaves through the cluster's egress gateway
    tls_originated: bool = False  # the caller's plain HTTP leaves as TLS
    port: int | None = None  # the port it leaves towards (the TLS port where originated)

    @property
    def works(self) -> bool:
        return self.refused is None


class Mesh:
    """Compiled objects indexed for lookups, plus the fleet facts."""

    def __init__(self, compiled: Mapping[str, Iterable[Obj]], fleet: Fleet) -> None:
        self.fleet = fleet
        self._by_kind: dict[tuple[str, str], list[Obj]] = {}
        for cluster, objects in compiled.items():
            for obj in objects:
                self._by_kind.setdefault((cluster, obj["kind"]), []).append(obj)

    def objects(self, cluster: str, kind: str) -> list[Obj]:
        return self._by_kind.get((cluster, kind), [])

    # --------------------------------------------------------------------------------- the call

    def resolve(self, caller: Workload, host: str, port: int) -> Outcome:
        cluster, namespace = caller.cluster, caller.namespace
        entry = self._visible(cluster, "ServiceEntry", namespace, lambda o: host in o["spec"]["hosts"])
        if not self._imported(cluster, namespace, host, entry):
            return Outcome(refused=f"{host} is not imported by the Sidecar of {namespace}")
        return self._follow(caller, host, port, entry, self._weighted_routes(cluster, namespace, host, port))

    def resolve_external(self, caller: Workload, host: str, port: int, cluster_domain: str = "cluster.local"
                         ) -> ExternalOutcome:
        """A call from `caller` to `host:port` outside the mesh."""
        cluster, namespace = caller.cluster, caller.namespace
        entry = self._visible(cluster, "ServiceEntry", namespace, lambda o: o["spec"]["location"] == "MESH_EXTERNAL"
                              and any(_host_matches(h, host) for h in o["spec"]["hosts"]))
        if entry is None:
            return ExternalOutcome(refused=f"no external ServiceEntry for {host} visible to {namespace}")
        if not self._imported(cluster, namespace, host, entry):
            return ExternalOutcome(refused=f"{host} is not imported by the Sidecar of {namespace}")
        se_port = next((p for p in entry["spec"]["ports"] if p["number"] == port), None)
        if se_port is None:
            return ExternalOutcome(refused=f"{host} has no port {port} here")
        route = self._external_route(cluster, namespace, host, port, "mesh")
        if route is None:
            return self._leave(cluster, namespace, entry, host, se_port, False)
        gateway_host = egress.gateway_host(cluster_domain)
        destination = route["destination"]
        if destination["host"] != gateway_host:
            return ExternalOutcome(refused=f"{host}:{port} is routed to {destination['host']}, not the egress gateway")
        if not self._imported(cluster, namespace, gateway_host, {"metadata": {"namespace": egress.EGRESS_NAMESPACE}}):
            return ExternalOutcome(refused=f"the egress gateway is not imported by the Sidecar of {namespace}")
        gateway = next((g for g in self.fleet.egress_gateways if g.cluster == cluster), None)
        if gateway is None:
            return ExternalOutcome(refused=f"no egress gateway runs in {cluster}")
        via = destination["port"]["number"]
        rule = self._visible(cluster, "DestinationRule", namespace, lambda o: o["spec"]["host"] == gateway_host)
        subset = next((s for s in (rule or {"spec": {}})["spec"].get("subsets", [])
                       if s["name"] == destination.get("subset")), None)
        tls: Obj = next((s["tls"] for s in (subset or {}).get("trafficPolicy", {}).get("portLevelSettings", [])
                         if s["port"]["number"] == via), {})
        if tls.get("mode") != "ISTIO_MUTUAL" or not tls.get("sni"):
            return ExternalOutcome(refused=f"no ISTIO_MUTUAL subset with an SNI towards the egress gateway for {host}")
        sni = tls["sni"]
        server = self._egress_server(gateway, via, sni)
        if server is None:
            return ExternalOutcome(refused=f"{cluster}'s egress gateway has no mTLS server for {sni} on {via}")
        inner = self._external_route(cluster, egress.EGRESS_NAMESPACE, sni, via, egress.gateway_ref(), server)
        if inner is None or inner["destination"]["host"] != host:
            return ExternalOutcome(refused=f"the egress gateway routes {sni} on {via} nowhere, or elsewhere")
        principal = f"{self.fleet.trust_domain}/ns/{namespace}/sa/{caller.service_account}"
        policies = self.objects(cluster, "AuthorizationPolicy")
        if not authorized(policies, gateway, principal, via, sni=sni):
            return ExternalOutcome(refused=f"the egress gateway denies {principal} for {sni}", via_gateway=True)
        target = inner["destination"]["port"]["number"]
        entry = self._visible(cluster, "ServiceEntry", egress.EGRESS_NAMESPACE, lambda o: o["spec"]["location"]
                              == "MESH_EXTERNAL" and host in o["spec"]["hosts"])
        se_port = next((p for p in (entry or {"spec": {"ports": []}})["spec"]["ports"] if p["number"] == target), None)
        if entry is None or se_port is None:
            return ExternalOutcome(refused=f"the egress gateway sees no ServiceEntry for {host}:{target}")
        return self._leave(cluster, egress.EGRESS_NAMESPACE, entry, host, se_port, True)

    def _leave(self, cluster: str, namespace: str, entry: Obj, host: str, port: Obj, via_gateway: bool
               ) -> ExternalOutcome:
        """The last proxy sends the call out; TLS originated where a visible rule says SIMPLE for the port."""
        rule = self._visible(cluster, "DestinationRule", namespace, lambda o: o["spec"]["host"] == host)
        tls: Obj = next((s["tls"] for s in (rule or {"spec": {}})["spec"].get("trafficPolicy", {}).get(
            "portLevelSettings", []) if s["port"]["number"] == port["number"]), {})
        originated = tls.get("mode") == "SIMPLE"
        if originated and tls.get("sni") != host:
            return ExternalOutcome(refused=f"TLS to {host} would be originated with SNI {tls.get('sni')}")
        if port["protocol"] == "HTTP" and "targetPort" in port and not originated:
            return ExternalOutcome(refused=f"plain HTTP would be sent to {host}:{port['targetPort']}")
        return ExternalOutcome(via_gateway=via_gateway, tls_originated=originated,
                               port=port.get("targetPort", port["number"]))

    def _external_route(self, cluster: str, namespace: str, host: str, port: int, gateway: str,
                        bind_ns: str = "*") -> Obj | None:
        """The first route of a VirtualService visible to `namespace`, bound to `gateway`, for host:port."""
        for obj in self.objects(cluster, "VirtualService"):
            spec = obj["spec"]
            if not _exported(obj, namespace) or not any(_host_matches(h, host) for h in spec["hosts"]):
                continue
            if bind_ns not in ("*", obj["metadata"]["namespace"]):
                continue
            for kind in ("http", "tls", "tcp"):
                for route in spec.get(kind, []):
                    for match in route.get("match") or [{}]:
                        if gateway in match.get("gateways", spec.get("gateways", ["mesh"])) and \
                                match.get("port", port) == port and \
                                any(_host_matches(h, host) for h in match.get("sniHosts", [host])):
                            destination: Obj = route["route"][0]
                            return destination
        return None

    def _egress_server(self, gateway: Workload, port: int, sni: str) -> str | None:
        """The namespace allowed to bind the egress Gateway's mTLS server for `sni` on `port`, if any."""
        for obj in self.objects(gateway.cluster, "Gateway"):
            if not _selects(obj["spec"]["selector"], gateway.labels):
                continue
            for server in obj["spec"]["servers"]:
                if server["port"]["number"] != port or server.get("tls", {}).get("mode") != "ISTIO_MUTUAL":
                    continue
                for item in server["hosts"]:
                    ns, _, name = item.rpartition("/")
                    if _host_matches(name, sni):
                        bind: str = {"": "*", ".": gateway.namespace}.get(ns, ns)
                        return bind
        return None

    def resolve_ingress(self, cluster: str, host: str) -> Outcome:
        """A request for `https://<host>/` arriving at `cluster`'s ingress load balancer."""
        gateway = next((g for g in self.fleet.ingress_gateways if g.cluster == cluster), None)
        if gateway is None:
            return Outcome(refused=f"no ingress gateway runs in {cluster}")
        bound = self._ingress_server(gateway, host)
        if bound is None:
            return Outcome(refused=f"{cluster}'s ingress gateway serves no HTTPS {host} on {INGRESS_PORT}")
        route = self._ingress_route(gateway, host, *bound)
        if route is None:
            return Outcome(refused=f"no VirtualService routes {host} at {cluster}'s ingress gateway")
        destinations = [d["destination"] for d in route["route"]]
        target = destinations[0]["host"]
        port = destinations[0].get("port", {}).get("number")
        if port is None or any(d["host"] != target or d.get("port", {}).get("number") != port for d in destinations):
            return Outcome(refused=f"the ingress route for {host} names no single host and port")
        routes = {d["destination"]["subset"]: d.get("weight", 100) for d in route["route"]
                  if "subset" in d["destination"]}
        entry = self._visible(cluster, "ServiceEntry", gateway.namespace, lambda o: target in o["spec"]["hosts"])
        return self._follow(gateway, target, port, entry, routes)

    def _follow(self, caller: Workload, host: str, port: int, entry: Obj | None, routes: Mapping[str, int]
                ) -> Outcome:
        """From a visible ServiceEntry on: DestinationRule, endpoints, priorities, landing, authorization."""
        cluster, namespace = caller.cluster, caller.namespace
        if entry is None:
            return Outcome(refused=f"no ServiceEntry for {host} visible to {namespace}")
        port_name = next((p["name"] for p in entry["spec"]["ports"] if p["number"] == port), None)
        if port_name is None:
            return Outcome(refused=f"{host} has no port {port}")
        rule = self._destination_rule(cluster, namespace, host, entry)
        if rule is None or rule["spec"]["trafficPolicy"]["tls"]["mode"] != "ISTIO_MUTUAL":
            return Outcome(refused=f"no ISTIO_MUTUAL DestinationRule for {host}")
        candidates = self._endpoints(cluster, entry, port_name)
        principal = f"{self.fleet.trust_domain}/ns/{namespace}/sa/{caller.service_account}"
        setting = rule["spec"]["trafficPolicy"]["loadBalancer"].get("localityLbSetting", {})
        region, zone = self.fleet.localities[cluster]
        group_weights = locality_lb.group_weights(setting, (region, zone, cluster), dict.fromkeys(
            (c[1] for c in candidates), 1))
        endpoints = []
        for labels, locality, target, problem in candidates:
            subset, weight = self._subset_of(rule, routes, labels)
            if routes and subset is None:
                continue  # no route sends traffic to endpoints outside the split's subsets
            if group_weights is not None and locality not in group_weights:
                continue  # `distribute` names no key for its locality: Istio drops its endpoints
            landed, land_problem = self._land(cluster, target, host, (port, port_name), subset, problem)
            allowed = landed is not None and self._authorized(landed, principal, port)
            endpoints.append((labels, locality, target, weight, allowed, land_problem))
        priorities = self._priorities(cluster, rule, [(e[0], e[1]) for e in endpoints])
        return Outcome(endpoints=tuple(
            Endpoint(e[2], p, e[3], e[4], e[5], "/".join(e[1]).rstrip("/"),
                     None if group_weights is None else group_weights[e[1]], e[2] == cluster)
            for e, p in zip(endpoints, priorities, strict=True)
        ))

    # ---------------------------------------------------------------------------------- ingress

    def _ingress_server(self, gateway: Workload, host: str) -> tuple[Obj, str] | None:
        """(Gateway, namespace allowed to bind) of the HTTPS server on 443 that terminates `host`."""
        for obj in self.objects(gateway.cluster, "Gateway"):
            if not _selects(obj["spec"]["selector"], gateway.labels):
                continue  # by default a Gateway applies to matching pods of any namespace
            for server in obj["spec"]["servers"]:
                tls = server.get("tls", {})
                if (server["port"]["number"], server["port"]["protocol"]) != (INGRESS_PORT, "HTTPS") or \
                        tls.get("mode") != "SIMPLE" or not tls.get("credentialName"):
                    continue
                for item in server["hosts"]:
                    ns, _, name = item.rpartition("/")
                    if _host_matches(name, host):
                        return obj, {"": "*", ".": gateway.namespace}.get(ns, ns)
        return None

    def _ingress_route(self, gateway: Workload, host: str, bound: Obj, bind_ns: str) -> Obj | None:
        """The first HTTP route of a VirtualService bound to `bound` for `host`, as the gateway sees it."""
        gw_ns, gw_name = bound["metadata"]["namespace"], bound["metadata"]["name"]
        refs = {f"{gw_ns}/{gw_name}"}
        for obj in self.objects(gateway.cluster, "VirtualService"):
            ns, spec = obj["metadata"]["namespace"], obj["spec"]
            names = {g if "/" in g else f"{ns}/{g}" for g in spec.get("gateways", [])}
            if not (names & refs) or bind_ns not in ("*", ns) or not _exported(obj, gw_ns):
                continue
            if any(_host_matches(h, host) for h in spec["hosts"]) and spec.get("http"):
                route: Obj = spec["http"][0]
                return route
        return None

    # ------------------------------------------------------------------------------- visibility

    def _visible(self, cluster: str, kind: str, namespace: str, match: Any) -> Obj | None:
        for obj in self.objects(cluster, kind):
            if match(obj) and _exported(obj, namespace):
                return obj
        return None

    def _destination_rule(self, cluster: str, namespace: str, host: str, entry: Obj) -> Obj | None:
        """The rule Istio applies for `host` to a proxy in `namespace`: one in the proxy's own
        namespace, else one exported from the service's namespace — for a ServiceEntry, the one it
        lives in — else one exported from the root namespace; a rule anywhere else is never found
        (istio/istio pilot/pkg/model/push_context.go, `destinationRule`)."""
        for owner in dict.fromkeys((namespace, entry["metadata"]["namespace"], meta.ISTIO_SYSTEM)):
            rule = self._visible(cluster, "DestinationRule", namespace, lambda o, ns=owner: o["spec"]["host"] == host
                                 and o["metadata"]["namespace"] == ns)
            if rule is not None:
                return rule
        return None

    def _imported(self, cluster: str, namespace: str, host: str, entry: Obj | None) -> bool:
        sidecars = [o for o in self.objects(cluster, "Sidecar") if o["metadata"]["namespace"] == namespace]
        if not sidecars:
            return True  # no Sidecar: everything exported to the namespace is visible
        hosts = sidecars[0]["spec"]["egress"][0]["hosts"]
        entry_ns = entry["metadata"]["namespace"] if entry else None
        for item in hosts:
            ns, _, name = item.partition("/")
            ns_ok = ns == "*" or ns == entry_ns or (ns == "." and entry_ns == namespace)
            if ns_ok and _host_matches(name, host):
                return True
        return False

    # -------------------------------------------------------------------------------- endpoints

    def _endpoints(self, cluster: str, entry: Obj, port_name: str) -> list[Candidate]:
        """(labels, locality, target cluster, problem) per endpoint of the entry in `cluster`."""
        spec, namespace = entry["spec"], entry["metadata"]["namespace"]
        out: list[Candidate] = []
        selector = spec.get("workloadSelector", {}).get("labels")
        if selector is not None:
            for workload in self.fleet.workloads:
                here = (workload.cluster, workload.namespace) == (cluster, namespace)
                if here and _selects(selector, workload.labels):
                    labels = {**workload.labels, meta.NETWORK_LABEL: cluster}
                    region, zone = self.fleet.localities[cluster]
                    out += [(labels, (region, z, cluster), cluster, None)
                            for z in self.fleet.zones.get(cluster, (zone,))]  # one group per zone
            remote = [o["spec"] for o in self.objects(cluster, "WorkloadEntry")
                      if o["metadata"]["namespace"] == namespace and _selects(selector, o["spec"]["labels"])]
        else:
            remote = list(spec.get("endpoints", []))
        for endpoint in remote:
            target = self.fleet.addresses.get(endpoint["address"])
            problem: str | None = None
            if target is None:
                problem = f"{endpoint['address']} is no cluster's east-west address"
            elif endpoint.get("ports", {}).get(port_name) != meta.EASTWEST_PORT:
                problem = f"port {port_name} does not map to {meta.EASTWEST_PORT}"
            elif endpoint.get("network") != target:
                problem = f"endpoint network {endpoint.get('network')} is not {target}'s network"
            labels = {**endpoint.get("labels", {}), meta.NETWORK_LABEL: endpoint.get("network", "")}
            out.append((labels, locality_lb.split(endpoint.get("locality", "")), target or endpoint["address"],
                        problem))
        return out

    def _land(self, cluster: str, target: str, host: str, port: tuple[int, str], subset: str | None,
              problem: str | None) -> tuple[Workload | None, str | None]:
        """Follow an endpoint to a pod: directly if local, else through `target`'s gateway."""
        if problem is None and target != cluster:
            problem = self._gateway_admits(target, host, subset)
        if problem is not None:
            return None, problem
        entry = next((o for o in self.objects(target, "ServiceEntry") if host in o["spec"]["hosts"]), None)
        if entry is None:
            return None, f"{target} has no ServiceEntry for {host}"
        ports = {(p["number"], p["name"]) for p in entry["spec"]["ports"]}
        if port not in ports or entry["spec"]["location"] != "MESH_INTERNAL":
            return None, f"{target}'s ServiceEntry for {host} differs in port {port[0]}/{port[1]}"
        selector = entry["spec"].get("workloadSelector", {}).get("labels")
        pods = [w for w in self.fleet.workloads if w.cluster == target
                and w.namespace == entry["metadata"]["namespace"] and selector and _selects(selector, w.labels)]
        if not pods:
            return None, f"no pods of {host} in {target}"
        return pods[0], None

    def _gateway_admits(self, target: str, host: str, subset: str | None) -> str | None:
        gateways = self.objects(target, "Gateway")
        hosts = [h for g in gateways for s in g["spec"]["servers"] if s["tls"]["mode"] == "AUTO_PASSTHROUGH"
                 for h in s["hosts"]]
        if not any(_host_matches(h.partition("/")[2] or h, host) for h in hosts):
            return f"{target}'s east-west gateway does not expose {host}"
        entry = next(o for o in self.objects(target, "ServiceEntry") if host in o["spec"]["hosts"])
        if not _exported(entry, meta.ISTIO_SYSTEM):
            return f"{target}'s ServiceEntry for {host} is not exported to {meta.ISTIO_SYSTEM}"
        if subset is not None:
            rule = self._visible(target, "DestinationRule", meta.ISTIO_SYSTEM, lambda o: o["spec"]["host"] == host)
            if rule is None or subset not in {s["name"] for s in rule["spec"].get("subsets", [])}:
                return f"{target} does not define subset {subset} of {host}: SNI unknown to its gateway"
        return None

    # ----------------------------------------------------------------------------- routing, LB

    def _weighted_routes(self, cluster: str, namespace: str, host: str, port: int) -> dict[str, int]:
        service = self._visible(cluster, "VirtualService", namespace, lambda o: host in o["spec"]["hosts"]
                                and "mesh" in o["spec"].get("gateways", ["mesh"]))
        if service is None or not self._imported(cluster, namespace, host, service):
            # a Sidecar import `<ns>/<host>` takes in VirtualServices of that namespace only
            return {}
        spec = service["spec"]
        for route in spec.get("http", []) + spec.get("tcp", []) + spec.get("tls", []):
            matches = route.get("match") or [{}]
            if any(m.get("port", port) == port for m in matches):
                return {d["destination"]["subset"]: d.get("weight", 100)
                        for d in route["route"] if "subset" in d["destination"]}
        return {}

    @staticmethod
    def _subset_of(rule: Obj, routes: Mapping[str, int], labels: Mapping[str, str]) -> tuple[str | None, int | None]:
        for subset in rule["spec"].get("subsets", []):
            if subset["name"] in routes and _selects(subset["labels"], labels):
                return subset["name"], routes[subset["name"]]
        return None, None

    def _priorities(self, cluster: str, rule: Obj, endpoints: list[tuple[dict[str, str], locality_lb.Locality]]
                    ) -> list[int]:
        """Istio's failoverPriority ranking: count of leading labels matching the caller's; none
        at all under `distribute`, which Istio applies instead of any failover."""
        setting = rule["spec"]["trafficPolicy"]["loadBalancer"].get("localityLbSetting", {})
        order = [] if setting.get("distribute") else setting.get("failoverPriority", [])
        region, zone = self.fleet.localities[cluster]
        proxy = {"topology.kubernetes.io/region": region, "topology.kubernetes.io/zone": zone,
                 meta.NETWORK_LABEL: cluster}
        raw = []
        for labels, (ep_region, ep_zone, _) in endpoints:
            values = {**labels, "topology.kubernetes.io/region": ep_region, "topology.kubernetes.io/zone": ep_zone}
            rank = 0
            for i, item in enumerate(order):
                key, has_value, value = item.partition("=")
                wanted = value if has_value else proxy.get(key, "")
                if values.get(key, "") != wanted:
                    rank = len(order) - i
                    break
            raw.append(rank)
        levels = sorted(set(raw))
        return [levels.index(r) for r in raw]

    # ---------------------------------------------------------------------------- authorization

    def _authorized(self, pod: Workload, principal: str, port: int) -> bool:
        return authorized(self.objects(pod.cluster, "AuthorizationPolicy"), pod, principal, port)


def authorized(policies: Iterable[Obj], pod: Workload, principal: str, port: int, sni: str | None = None) -> bool:
    """Istio's ALLOW semantics: with any ALLOW policy on the pod, a request needs a matching rule
    (`when: connection.sni` compared with the connection's SNI, where there is one)."""
    applicable = [p for p in policies if p["metadata"]["namespace"] == pod.namespace
                  and _selects(p["spec"].get("selector", {}).get("matchLabels", {}), pod.labels)]
    if not applicable:
        return True
    for policy in applicable:
        for rule in policy["spec"].get("rules", []):
            sources = [s["source"] for s in rule.get("from", [])]
            ops = [o["operation"] for o in rule.get("to", [])]
            source_ok = not sources or any(principal in s.get("principals", []) for s in sources)
            port_ok = not ops or any(str(port) in o.get("ports", [str(port)]) for o in ops)
            when_ok = all(sni in c["values"] for c in rule.get("when", []) if c["key"] == "connection.sni")
            if source_ok and port_ok and when_ok:
                return True
    return False


def shares(outcome: Outcome, down: Collection[str] = (), healthy: Mapping[str, float] | None = None,
           pods: int = 3) -> dict[str, float]:
    """Percent of a caller's calls each cluster serves, as Envoy would share them once ejection
    has run its course (route weights to subsets are not modelled; our objects have none).

    `down`: clusters whose endpoints are all ejected; `healthy`: the caller's own pods' healthy
    fraction per cluster (1 by default). A remote cluster is one endpoint — its gateway hides how
    many pods behind it are healthy — so it counts 0 or 1; local pods count `pods` per zone group.
    Priorities take load by Envoy's rule (health = min(100 %, 1.4 × healthy hosts / hosts), a level
    takes what the ones before it cannot), and within a priority each locality group gets
    weight × availability (`locality_lb.shares`), its weight being the `distribute` weight or,
    without one, its host count (Istio sets locality-weighted load balancing for failover too).
    Empty when nothing is left to serve."""
    healthy = healthy or {}
    levels: dict[int, list[tuple[str, int, float, int]]] = {}
    for e in outcome.endpoints:
        fraction = 0.0 if e.cluster in down else healthy.get(e.cluster, 1.0)
        hosts = pods if e.local else 1
        if not e.local:
            fraction = 1.0 if fraction > 0 else 0.0
        weight = e.locality_weight if e.locality_weight is not None else hosts
        levels.setdefault(e.priority, []).append((e.cluster, weight, fraction, hosts))
    health = {p: min(1.0, locality_lb.OVERPROVISIONING * sum(g[2] * g[3] for g in groups) / sum(g[3] for g in groups))
              for p, groups in sorted(levels.items())}
    total = min(1.0, sum(health.values()))
    out: dict[str, float] = {}
    left = 1.0
    for p, groups in sorted(levels.items()):
        if not total:
            break
        load = min(left, health[p] / total)
        left -= load
        for cluster, share in locality_lb.shares((c, w, f) for c, w, f, _ in groups).items():
            out[cluster] = out.get(cluster, 0.0) + load * share
    return {c: v for c, v in sorted(out.items()) if v > 0}


def _exported(obj: Obj, namespace: str) -> bool:
    export = obj["spec"].get("exportTo")
    if not export:
        return True
    return "*" in export or namespace in export or ("." in export and obj["metadata"]["namespace"] == namespace)


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _host_matches(pattern: str, host: str) -> bool:
    if pattern == "*" or pattern == host:
        return True
    return pattern.startswith("*") and host.endswith(pattern[1:])


def facts_from_world(world: World) -> Fleet:
    """The ground truth a real fleet would provide, taken from the manifest the config came from."""
    workloads = tuple(
        Workload(placement.cluster, spec.namespace, spec.workload_labels, spec.service_account)
        for spec in world.services.values()
        for placement in world.placements[spec.name]
    )
    addresses: dict[str, str] = {}
    for name, cluster in world.clusters.items():
        for kind in ("internal", "external"):
            pinned = getattr(cluster.east_west, kind) if cluster.east_west else None
            addresses[pinned or address_placeholder(name, kind)] = name
    localities = {
        name: (c.region, c.zones[0] if c.zones else f"{c.region}-b") for name, c in world.clusters.items()
    }
    # The platform installs the ingress gateway wherever an `ingress: true` service runs.
    gateway = world.fleet.ingress_gateway
    ingress_clusters = sorted({c for s in world.services.values() if s.ingress for c in world.clusters_of(s.name)})
    gateways = tuple(Workload(c, gateway.namespace, INGRESS_POD_LABELS, gateway.service_account)
                     for c in ingress_clusters)
    egress_gateways = tuple(Workload(c, egress.EGRESS_NAMESPACE, EGRESS_POD_LABELS, egress.GATEWAY_SERVICE_ACCOUNT)
                            for c in egress.gateway_clusters(world))
    zones = {name: tuple(c.zones) or (localities[name][1],) for name, c in world.clusters.items()}
    return Fleet(workloads, addresses, localities, world.fleet.trust_domain, gateways, egress_gateways, zones)
