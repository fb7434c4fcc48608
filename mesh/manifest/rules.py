"""Rules that need more than one document: names, references, tiers, locations.

Each rule reads the schema-valid documents and returns problems pointing at the node a person would
edit to fix it. Rules never stop early: the caller reports every problem of every rule together.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections import Counter
from collections.abc import Iterable, Iterator

from mesh.diagnostics import Problem, Severity
from mesh.manifest import egress_rules, schema, weight_rules
from mesh.manifest.load import Origin, RawManifest, SourcedService


def check(raw: RawManifest) -> list[Problem]:
    """Every cross-document problem of the manifest (errors and warnings)."""
    raw, outside = egress_rules.split(raw)  # calls out of the mesh: judged there, not as unknown hosts
    problems: list[Problem] = []
    fleet = raw.fleet
    if fleet is not None:
        problems += _check_fleet(fleet, raw.fleet_origin)
    problems += _check_services(raw, fleet)
    if fleet is not None:
        problems += _check_locations(raw, fleet)
        problems += weight_rules.check(raw, fleet)
    return problems + outside


def _hint(name: str, choices: Iterable[str], what: str) -> str:
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.7)
    if close:
        return f"; did you mean {close[0]!r}?"
    if len(choices) > 12:
        return ""
    return f"; declared {what}: {', '.join(choices) or '(none)'}"


def _host_hint(host: str, hosts: Iterable[str]) -> str:
    """Hosts share long suffixes, so compare their first labels: `gama.svc…` → `gamma.svc…`."""
    by_label = {h.split(".", 1)[0]: h for h in sorted(hosts) if h.split(".", 1)[1:] == host.split(".", 1)[1:]}
    close = difflib.get_close_matches(host.split(".", 1)[0], sorted(by_label), n=1, cutoff=0.7)
    return f"; did you mean {by_label[close[0]]!r}?" if close else ""


# ------------------------------------------------------------------------------------------- fleet


def _check_fleet(fleet: schema.Fleet, origin: Origin) -> Iterator[Problem]:
    for tier_name, tier in sorted(fleet.tiers.items()):
        for i, callee in enumerate(tier.may_call):
            if callee not in fleet.tiers:
                yield origin.problem(
                    f"unknown tier {callee!r}{_hint(callee, fleet.tiers, 'tiers')}",
                    "unknown-tier", "tiers", tier_name, "mayCall", i,
                )
    first_index: dict[str, int] = {}
    for i, cluster in enumerate(fleet.clusters):
        at = origin.at("clusters", i)
        if cluster.name in first_index:
            yield at.problem(
                f"duplicate cluster name {cluster.name!r} (first declared as clusters"
                f"[{first_index[cluster.name]}])",
                "duplicate-cluster", "name",
            )
        else:
            first_index[cluster.name] = i
        yield from _check_cluster(fleet, cluster, at)
    yield from _check_addresses(fleet, origin)
    yield from _check_ranges(fleet, origin)
    yield from _check_shared_vpc_hosts(fleet, origin)


def _check_shared_vpc_hosts(fleet: schema.Fleet, origin: Origin) -> Iterator[Problem]:
    """A project can be attached to one Shared VPC host project only (GCP rejects a second).

    A cluster on a network of another project makes its own project a service project of that
    network's project; so all clusters of one project must use networks of one host project.
    """
    first_host: dict[str, tuple[str, int]] = {}  # cluster project -> (host project, first cluster index)
    for i, cluster in enumerate(fleet.clusters):
        network = fleet.networks.get(cluster.network)
        if network is None or network.project == cluster.project:
            continue
        host, first = first_host.setdefault(cluster.project, (network.project, i))
        if host != network.project:
            yield origin.at("clusters", i).problem(
                f"project {cluster.project!r} would be attached to two Shared VPC host projects: "
                f"{host!r} (network of clusters[{first}] {fleet.clusters[first].name!r}) and "
                f"{network.project!r} (network {cluster.network!r}); a service project can be attached to "
                "one host project only: put these networks in one host project, or this cluster in another project",
                "shared-vpc-two-hosts", "network",
            )


def _check_cluster(fleet: schema.Fleet, cluster: schema.Cluster, at: Origin) -> Iterator[Problem]:
    if cluster.network not in fleet.networks:
        yield at.problem(
            f"unknown network {cluster.network!r}{_hint(cluster.network, fleet.networks, 'networks')}",
            "unknown-network", "network",
        )
    if cluster.tier not in fleet.tiers:
        yield at.problem(
            f"unknown tier {cluster.tier!r}{_hint(cluster.tier, fleet.tiers, 'tiers')}",
            "unknown-tier", "tier",
        )
    for i, zone in enumerate(cluster.zones):
        if not (zone.startswith(cluster.region + "-") and len(zone) == len(cluster.region) + 2):
            yield at.problem(
                f"zone {zone!r} is not a zone of region {cluster.region!r} "
                f"(expected e.g. {cluster.region}-b)",
                "zone-region", "zones", i,
            )
    for name, count in sorted(Counter(cluster.zones).items()):
        if count > 1:
            yield at.problem(f"zone {name!r} is listed {count} times", "duplicate-zone", "zones")
    pools = [pool.name for pool in cluster.node_pools or []]
    for i, name in enumerate(pools):
        if name in pools[:i]:
            yield at.problem(f"duplicate node pool name {name!r}", "duplicate-node-pool",
                             "nodePools", i, "name")


def _check_addresses(fleet: schema.Fleet, origin: Origin) -> Iterator[Problem]:
    """Two gateways on one address would send one cluster's traffic to another."""
    owner: dict[str, str] = {}
    for i, cluster in enumerate(fleet.clusters):
        if cluster.east_west is None:
            continue
        for kind in ("internal", "external"):
            address = getattr(cluster.east_west, kind)
            if address is None:
                continue
            if address in owner:
                yield origin.problem(
                    f"east-west address {address} is already used by {owner[address]}",
                    "duplicate-address", "clusters", i, "eastWest", kind,
                )
            else:
                owner[address] = f"cluster {cluster.name!r} ({kind})"


def _check_ranges(fleet: schema.Fleet, origin: Origin) -> Iterator[Problem]:
    """Ranges on one VPC must not overlap; the internal east-west address sits in the node range."""
    taken: dict[str, list[tuple[ipaddress.IPv4Network, str]]] = {}
    for i, cluster in enumerate(fleet.clusters):
        ranges = cluster.ip_ranges
        if ranges is None:
            continue
        at = origin.at("clusters", i, "ipRanges")
        if ipaddress.IPv4Network(ranges.control_plane).prefixlen != 28:
            yield at.problem("the control-plane range must be a /28 (GKE's requirement)", "range-size",
                             "controlPlane")
        internal = cluster.east_west.internal if cluster.east_west else None
        if internal and ipaddress.IPv4Address(internal) not in ipaddress.IPv4Network(ranges.nodes):
            yield origin.problem(
                f"internal east-west address {internal} is outside the node range {ranges.nodes}",
                "address-range", "clusters", i, "eastWest", "internal")
        used = taken.setdefault(cluster.network, [])
        for field in ("nodes", "pods", "services", "controlPlane"):
            network = ipaddress.IPv4Network(getattr(ranges, _SNAKE[field]))
            clash = next((owner for other, owner in used if network.overlaps(other)), None)
            if clash:
                yield at.problem(f"{network} overlaps {clash} on network {cluster.network!r}",
                                 "range-overlap", field)
            used.append((network, f"{cluster.name} {field}"))


_SNAKE = {"nodes": "nodes", "pods": "pods", "services": "services", "controlPlane": "control_plane"}


# ---------------------------------------------------------------------------------------- services


RESERVED_NAMESPACES = frozenset({"istio-system", "kube-system", "kube-public", "kube-node-lease", "default",
                                 "mesh-imports"})
RESERVED_PREFIXES = ("kube-",)  # Kubernetes and its add-ons (kube-flannel, kube-dns, ...)


def _check_identities(raw: RawManifest, fleet: schema.Fleet | None) -> Iterator[Problem]:
    """Namespaces the platform owns, and one identity and one selector per service: authorization
    works on identities and selectors, so a shared one would grant one service the other's callers."""
    reserved = RESERVED_NAMESPACES | ({fleet.ingress_gateway.namespace} if fleet else set())
    accounts: dict[tuple[str, str], str] = {}
    selectors: dict[str, list[tuple[str, dict[str, str]]]] = {}
    names: set[str] = set()
    for entry in raw.services:
        service, at = entry.service, entry.origin
        if service.name in names:
            continue  # a duplicate declaration: reported once, as such
        names.add(service.name)
        if service.namespace in reserved or service.namespace.startswith(RESERVED_PREFIXES):
            yield at.problem(f"namespace {service.namespace!r} belongs to the platform (Istio, Kubernetes or "
                             "the ingress gateway); give the service its own", "reserved-namespace", "namespace")
        owner = accounts.setdefault((service.namespace, service.service_account), service.name)
        if owner != service.name:
            yield at.problem(f"service account {service.service_account!r} in namespace {service.namespace!r} is "
                             f"already the identity of service {owner!r}; each service needs its own",
                             "shared-identity", "serviceAccount")
        labels = service.workload_labels
        for other, other_labels in selectors.get(service.namespace, []):
            small, large = sorted((labels, other_labels), key=len)
            if small.items() <= large.items():
                yield at.problem(f"selector {labels} would also select the pods of service {other!r} "
                                 f"({other_labels}) in namespace {service.namespace!r}", "shared-selector",
                                 "selector" if service.selector else "name")
        selectors.setdefault(service.namespace, []).append((service.name, labels))


def _check_services(raw: RawManifest, fleet: schema.Fleet | None) -> Iterator[Problem]:
    yield from _check_identities(raw, fleet)
    by_name: dict[str, SourcedService] = {}
    by_host: dict[str, SourcedService] = {}
    for entry in raw.services:
        service, at = entry.service, entry.origin
        first = by_name.get(service.name)
        if first is None:
            by_name[service.name] = entry
        elif first.service.namespace == service.namespace and first.service.host != service.host:
            yield at.problem(
                f"service {service.name!r} in namespace {service.namespace!r} is also declared in "
                f"{_where(first)} with host {first.service.host!r}; one service has one host",
                "conflicting-service", "host",
            )
        else:
            yield at.problem(
                f"duplicate service name {service.name!r} (also declared in {_where(first)})",
                "duplicate-service", "name",
            )
        other = by_host.setdefault(service.host, entry)
        if other is not entry and other.service.name != service.name:
            yield at.problem(
                f"host {service.host!r} is already the host of service {other.service.name!r} "
                f"({_where(other)})",
                "duplicate-host", "host",
            )
        yield from _check_ports(service, at)
        if fleet is not None:
            yield from _check_service_fleet(service, at, fleet)
    yield from _check_calls(raw, by_host, fleet)


def _where(entry: SourcedService) -> str:
    return entry.origin.file.name if not entry.origin.path else (
        f"{entry.origin.file.name} at {'.'.join(map(str, entry.origin.path))}"
    )


def _check_ports(service: schema.Service, at: Origin) -> Iterator[Problem]:
    names: set[str] = set()
    numbers: set[int] = set()
    for i, port in enumerate(service.ports):
        if port.name in names:
            yield at.problem(f"duplicate port name {port.name!r}", "duplicate-port-name",
                             "ports", i, "name")
        if port.number in numbers:
            yield at.problem(f"duplicate port number {port.number}", "duplicate-port-number",
                             "ports", i, "number")
        names.add(port.name)
        numbers.add(port.number)


def _check_service_fleet(service: schema.Service, at: Origin, fleet: schema.Fleet) -> Iterator[Problem]:
    if not any(service.host.endswith("." + domain) for domain in fleet.domains):
        yield at.problem(
            f"host {service.host!r} is not under a declared domain ({', '.join(fleet.domains)})",
            "host-domain", "host",
        )
    if service.tier not in fleet.tiers:
        yield at.problem(
            f"unknown tier {service.tier!r}{_hint(service.tier, fleet.tiers, 'tiers')}",
            "unknown-tier", "tier",
        )


def _check_redundant(call: schema.Call, i: int, seen: dict[tuple[str, int | None], int],
                     at: Origin) -> Iterator[Problem]:
    """A call listed twice, or one port of a host that is called on every port already."""
    if (call.host, call.port) in seen:
        yield at.problem(f"duplicate call to {call.host}" + (f" port {call.port}" if call.port else "")
                         + f" (also calls[{seen[call.host, call.port]}])", "duplicate-call", "calls", i)
    elif call.port is not None and (call.host, None) in seen:
        yield at.problem(f"redundant call to {call.host} port {call.port}: calls[{seen[call.host, None]}] calls "
                         "every port of it already", "redundant-call", "calls", i)
    elif call.port is None and (first := [j for (h, p), j in seen.items() if h == call.host and p is not None]):
        yield at.problem(f"call to every port of {call.host}, which calls[{first[0]}] calls on one port already; "
                         "keep one of them", "redundant-call", "calls", i)
    seen.setdefault((call.host, call.port), i)


def _check_calls(
    raw: RawManifest, by_host: dict[str, SourcedService], fleet: schema.Fleet | None
) -> Iterator[Problem]:
    called: set[str] = set()
    for entry in raw.services:
        service, at = entry.service, entry.origin
        seen: dict[tuple[str, int | None], int] = {}
        for i, call in enumerate(service.calls):
            target = by_host.get(call.host)
            yield from _check_redundant(call, i, seen, at)
            if target is None:
                if raw.invalid.complete and call.host not in raw.invalid.hosts:
                    yield at.problem(
                        f"calls unknown host {call.host!r}{_host_hint(call.host, by_host)}",
                        "unknown-host", "calls", i, "host",
                    )
                continue
            called.add(target.service.name)
            callee = target.service
            if call.port is not None and call.port not in {p.number for p in callee.ports}:
                ports = ", ".join(f"{p.number} ({p.name})" for p in callee.ports)
                yield at.problem(
                    f"{call.host} has no port {call.port}; its ports: {ports}",
                    "unknown-port", "calls", i, "port",
                )
            if fleet is not None and service.tier in fleet.tiers and callee.tier in fleet.tiers:
                allowed = fleet.tiers[service.tier].may_call
                if callee.tier not in allowed:
                    yield at.problem(
                        f"tier {service.tier!r} may not call tier {callee.tier!r} "
                        f"({callee.name} is in tier {callee.tier!r}; tiers.{service.tier}.mayCall: "
                        f"[{', '.join(allowed)}])",
                        "tier-policy", "calls", i, "host",
                    )
    for entry in raw.services:
        service = entry.service
        if service.name not in called and not service.ingress:
            yield Problem(
                entry.origin.file, entry.origin.document, entry.origin.path + ("name",),
                f"service {service.name!r} has no callers and is not marked ingress: its "
                "authorization policy will deny all traffic to it",
                "no-callers", Severity.WARNING,
            )


# --------------------------------------------------------------------------------------- locations


def _check_locations(raw: RawManifest, fleet: schema.Fleet) -> Iterator[Problem]:
    services = {entry.service.name: entry for entry in raw.services}
    clusters = {cluster.name: cluster for cluster in fleet.clusters}
    at = raw.locations_origin
    for name, locations in raw.locations.items():
        if name not in services:
            if not raw.invalid.complete or name in raw.invalid.names:
                continue  # declared in a document that is broken itself: reported there
            yield at.problem(
                f"location for unknown service {name!r}{_hint(name, services, 'services')}",
                "unknown-service", name, key=True,
            )
            continue
        yield from _check_service_locations(services[name].service, locations, clusters, at.at(name),
                                            set(fleet.tiers))
    if not raw.locations_complete:
        return  # the file itself is unusable and reported so: no service can be said to lack a location
    for name, entry in services.items():
        if name not in raw.locations and not _reported(name, raw.broken_locations):
            yield entry.origin.problem(
                f"service {name!r} has no location; add it to {raw.locations_origin.file.name}",
                "no-location", "name",
            )


def _reported(name: str, broken: frozenset[str]) -> bool:
    """An entry for this service (or one misspelt close to it) was reported broken already."""
    return name in broken or bool(difflib.get_close_matches(name, [b.lower() for b in broken], n=1, cutoff=0.8))


def _check_service_locations(
    service: schema.Service,
    locations: list[schema.Location],
    clusters: dict[str, schema.Cluster],
    at: Origin,
    tiers: set[str],
) -> Iterator[Problem]:
    if not locations:
        yield at.problem(f"service {service.name!r} lists no cluster", "no-location")
        return
    seen: set[str] = set()
    for i, location in enumerate(locations):
        cluster = clusters.get(location.cluster)
        if location.cluster in seen:
            yield at.problem(f"cluster {location.cluster!r} is listed twice", "duplicate-location",
                             i, "cluster")
        seen.add(location.cluster)
        if cluster is None:
            yield at.problem(
                f"unknown cluster {location.cluster!r}{_hint(location.cluster, clusters, 'clusters')}",
                "unknown-cluster", i, "cluster",
            )
        elif cluster.tier != service.tier and service.tier in tiers:  # an unknown tier is reported once
            yield at.problem(
                f"service {service.name!r} is in tier {service.tier!r} but cluster "
                f"{cluster.name!r} is in tier {cluster.tier!r}",
                "tier-mismatch", i, "cluster",
            )
    yield from _check_location_mode(locations, at)


def _check_location_mode(locations: list[schema.Location], at: Origin) -> Iterator[Problem]:
    """All plain (active-active), all with roles, or all weighted: never a mix."""
    weighted = [loc.weight is not None for loc in locations]
    if any(weighted) and not all(weighted):
        yield at.problem("either every location of a service has a weight, or none has",
                         "mixed-weights", weighted.index(False))
    elif all(weighted):
        total = sum(loc.weight or 0 for loc in locations)
        if total != 100:
            yield at.problem(f"weights sum to {total}, not 100", "weights-sum")
    roles = [loc.role for loc in locations]
    if any(roles) and not all(roles) and not any(weighted):
        yield at.problem("either every location of a service has a role, or none has",
                         "mixed-roles", roles.index(None))
    if "standby" in roles and "primary" not in roles:
        yield at.problem("a standby needs a primary: no location has role primary",
                         "standby-without-primary", roles.index("standby"), "role")
