"""The world model: the validated manifest, indexed once, answering who runs where and who calls whom.

Built in a fixed order from a manifest that passed every rule: clusters, services, placements,
call edges (merged per caller/callee pair), then one precomputed view per cluster. Builders only
read it. Everything that is iterated is sorted, so nothing downstream depends on input order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from mesh.manifest import schema

Role = Literal["active", "primary", "standby"]


@dataclass(frozen=True, slots=True)
class Placement:
    """One cluster running one service."""

    cluster: str
    role: Role
    weight: int | None


@dataclass(frozen=True, slots=True)
class Call:
    """An edge caller → callee. `ports` None means every port of the callee."""

    caller: str
    callee: str
    ports: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class ExternalCall:
    """An edge caller → approved external destination (fleet.yaml `externals`).

    `hosts` are the external's host entries the caller's calls matched (a wildcard entry stands for
    every host under it); `ports` None means every port of the external."""

    caller: str
    external: str
    hosts: tuple[str, ...]
    ports: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What one cluster needs to know: what runs here, and which local services call what."""

    name: str
    running: tuple[str, ...]
    # callee service → the services running here that call it (sorted)
    local_callers: Mapping[str, tuple[str, ...]]
    # services whose configuration this cluster holds: running here, or called from here
    needed: tuple[str, ...]


# Placeholder written where the manifest pins no east-west address. The `.invalid` top-level
# domain is reserved (RFC 2606), so such an object can never resolve anywhere real.
PLACEHOLDER_SUFFIX = ".eastwest.unresolved.invalid"


def address_placeholder(cluster: str, kind: str) -> str:
    return f"{cluster}.{kind}{PLACEHOLDER_SUFFIX}"


class World:
    """Immutable, indexed view of the fleet. Construct with `World.build`."""

    def __init__(
        self,
        fleet: schema.Fleet,
        services: Mapping[str, schema.Service],
        sources: Mapping[str, str],
        placements: Mapping[str, tuple[Placement, ...]],
    ) -> None:
        self.fleet = fleet
        self.clusters: Mapping[str, schema.Cluster] = MappingProxyType(
            {c.name: c for c in sorted(fleet.clusters, key=lambda c: c.name)}
        )
        # Plain dicts: read on every object built; they are never handed out for mutation.
        self.services: Mapping[str, schema.Service] = dict(sorted(services.items()))
        self.sources = MappingProxyType(dict(sources))
        self.placements = MappingProxyType({name: placements[name] for name in self.services})
        self._by_host = {s.host: s.name for s in self.services.values()}
        self.namespace_of: Mapping[str, str] = {s.name: s.namespace for s in self.services.values()}
        trust = fleet.trust_domain
        self.san_of: Mapping[str, str] = {
            s.name: f"spiffe://{trust}/ns/{s.namespace}/sa/{s.service_account}" for s in self.services.values()
        }
        self._roles = {(name, p.cluster): p.role for name, ps in self.placements.items() for p in ps}
        self._weighted = frozenset(n for n, ps in self.placements.items() if any(p.weight is not None for p in ps))
        self._standby = frozenset(n for n, ps in self.placements.items() if any(p.role == "standby" for p in ps))
        self.calls: tuple[Call, ...] = self._merge_calls()
        self.externals: Mapping[str, schema.External] = {
            e.name: e for e in sorted(fleet.externals, key=lambda e: e.name)}
        self._external_exact = {h: e.name for e in self.externals.values() for h in e.hosts if not h.startswith("*.")}
        self._external_wild = sorted(((h[1:], e.name, h) for e in self.externals.values() for h in e.hosts
                                      if h.startswith("*.")), key=lambda t: -len(t[0]))
        self.external_calls: tuple[ExternalCall, ...] = self._merge_external_calls()
        callers: dict[str, list[Call]] = defaultdict(list)
        callees: dict[str, list[Call]] = defaultdict(list)
        for call in self.calls:
            callers[call.callee].append(call)
            callees[call.caller].append(call)
        self._callers = {name: tuple(callers[name]) for name in self.services}
        self._callees = {name: tuple(callees[name]) for name in self.services}
        self._clusters_of = {
            name: tuple(p.cluster for p in self.placements[name]) for name in self.services
        }
        self._caller_clusters = {
            name: frozenset(c for call in self._callers[name] for c in self._clusters_of[call.caller])
            for name in self.services
        }
        self.views: Mapping[str, ClusterView] = MappingProxyType(self._build_views())
        self._external_callers = self._build_external_callers()
        self._localities = {name: self._locality(spec) for name, spec in self.clusters.items()}
        self._addresses: dict[tuple[str, str], str] = {}

    @classmethod
    def build(
        cls,
        fleet: schema.Fleet,
        services: list[tuple[schema.Service, Path]],
        locations: Mapping[str, list[schema.Location]],
        root: Path,
    ) -> World:
        base = root if root.is_dir() else root.parent
        by_name = {service.name: service for service, _ in services}
        sources = {service.name: _relative(file, base) for service, file in services}

        placements = {
            name: tuple(
                sorted(
                    (Placement(loc.cluster, loc.role or "active", loc.weight) for loc in locs),
                    key=lambda p: p.cluster,
                )
            )
            for name, locs in locations.items()
            if name in by_name
        }
        return cls(fleet, by_name, sources, placements)

    # ------------------------------------------------------------------------------- queries

    def external_for(self, host: str) -> tuple[str, str] | None:
        """(external name, matching host entry) for a called host, or None: an exact entry wins,
        then the longest wildcard (validation keeps entries from overlapping)."""
        name = self._external_exact.get(host)
        if name is not None:
            return name, host
        for suffix, name, entry in self._external_wild:
            if host.endswith(suffix):
                return name, entry
        return None

    def external_callers(self, cluster: str) -> Mapping[str, tuple[ExternalCall, ...]]:
        """External → the calls to it from services running in `cluster` (empty where none)."""
        return self._external_callers.get(cluster, {})

    def external_clusters(self, external: str) -> tuple[str, ...]:
        """Clusters running at least one caller of `external`."""
        return tuple(c for c, calls in self._external_callers.items() if external in calls)

    def service_by_host(self, host: str) -> schema.Service | None:
        name = self._by_host.get(host)
        return self.services[name] if name else None

    def clusters_of(self, service: str) -> tuple[str, ...]:
        return self._clusters_of[service]

    def callers(self, service: str) -> tuple[Call, ...]:
        return self._callers[service]

    def callees(self, service: str) -> tuple[Call, ...]:
        return self._callees[service]

    def caller_clusters(self, service: str) -> frozenset[str]:
        """Clusters running at least one caller of `service`."""
        return self._caller_clusters[service]

    def has_callers_elsewhere(self, service: str, cluster: str) -> bool:
        """Must `cluster` expose `service` on its east-west gateway?"""
        clusters = self._caller_clusters[service]
        return len(clusters) > 1 or (len(clusters) == 1 and cluster not in clusters)

    def is_weighted(self, service: str) -> bool:
        return service in self._weighted

    def has_standby(self, service: str) -> bool:
        return service in self._standby

    def role_in(self, service: str, cluster: str) -> Role | None:
        return self._roles.get((service, cluster))

    def locality(self, cluster: str) -> str:
        """region, or region/zone for a zonal cluster: where its east-west gateway lives."""
        return self._localities[cluster]

    @staticmethod
    def _locality(spec: schema.Cluster) -> str:
        return f"{spec.region}/{spec.zones[0]}" if len(spec.zones) == 1 else spec.region

    @staticmethod
    def istio_network(cluster: str) -> str:
        """One Istio network per cluster, even on a shared VPC: no cluster discovers another's
        pods, so every cross-cluster hop must go through the destination's east-west gateway."""
        return cluster

    def shares_network(self, a: str, b: str) -> bool:
        return self.clusters[a].network == self.clusters[b].network

    def east_west_address(self, caller: str, server: str) -> str:
        """The address a caller in `caller` dials to reach `server`'s east-west gateway."""
        key = (caller, server)
        address = self._addresses.get(key)
        if address is None:
            address = self._addresses[key] = self._east_west_address(caller, server)
        return address

    def _east_west_address(self, caller: str, server: str) -> str:
        kind = "internal" if self.shares_network(caller, server) else "external"
        pinned = self.clusters[server].east_west
        address = getattr(pinned, kind) if pinned else None
        return address or address_placeholder(server, kind)

    # ------------------------------------------------------------------------------- building

    def _merge_calls(self) -> tuple[Call, ...]:
        """One edge per caller/callee pair; a call without a port widens it to every port."""
        merged: dict[tuple[str, str], set[int] | None] = {}
        for service in self.services.values():
            for call in service.calls:
                callee = self._by_host.get(call.host)
                if callee is None:
                    continue  # an external destination: `_merge_external_calls`
                key = (service.name, callee)
                ports = merged.get(key, set())
                if key in merged and ports is None:
                    continue
                merged[key] = None if call.port is None else (ports or set()) | {call.port}
        return tuple(
            Call(caller, callee, None if ports is None else tuple(sorted(ports)))
            for (caller, callee), ports in sorted(merged.items())
        )

    def _merge_external_calls(self) -> tuple[ExternalCall, ...]:
        """One edge per caller/external; `allWorkloads` externals are called by every service on
        every host and port; a call without a port widens the edge to every port."""
        merged: dict[tuple[str, str], tuple[set[str], set[int] | None]] = {}
        for service in self.services.values():
            for external in self.externals.values():
                if external.all_workloads:
                    merged[(service.name, external.name)] = (set(external.hosts), None)
            for call in service.calls:
                if call.host in self._by_host:
                    continue
                match = self.external_for(call.host)
                if match is None:
                    continue
                key = (service.name, match[0])
                hosts, ports = merged.setdefault(key, (set(), set()))
                hosts.add(match[1])
                if ports is not None:
                    if call.port is None:
                        merged[key] = (hosts, None)
                    else:
                        ports.add(call.port)
        return tuple(
            ExternalCall(caller, external, tuple(sorted(hosts)), None if ports is None else tuple(sorted(ports)))
            for (caller, external), (hosts, ports) in sorted(merged.items())
        )

    def _build_external_callers(self) -> dict[str, Mapping[str, tuple[ExternalCall, ...]]]:
        out: dict[str, dict[str, list[ExternalCall]]] = {}
        for call in self.external_calls:  # sorted by caller, then external
            for cluster in self._clusters_of[call.caller]:
                out.setdefault(cluster, {}).setdefault(call.external, []).append(call)
        return {cluster: MappingProxyType({e: tuple(calls) for e, calls in sorted(by_ext.items())})
                for cluster, by_ext in sorted(out.items())}

    def _build_views(self) -> dict[str, ClusterView]:
        running: dict[str, list[str]] = {name: [] for name in self.clusters}
        for service in self.services:  # sorted, so each list comes out sorted
            for cluster in self._clusters_of[service]:
                running[cluster].append(service)
        views = {}
        for cluster, services in running.items():
            local_callers: dict[str, list[str]] = defaultdict(list)
            for caller in services:
                for call in self._callees[caller]:
                    local_callers[call.callee].append(caller)
            needed = sorted(set(services) | set(local_callers))
            views[cluster] = ClusterView(
                name=cluster,
                running=tuple(services),
                local_callers=MappingProxyType(
                    {k: tuple(v) for k, v in sorted(local_callers.items())}
                ),
                needed=tuple(needed),
            )
        return views


def _relative(file: Path, base: Path) -> str:
    # Service files are found under the manifest root, so no resolving is needed (it costs a
    # system call per path component, per file).
    try:
        return file.relative_to(base).as_posix()
    except ValueError:
        return file.name
