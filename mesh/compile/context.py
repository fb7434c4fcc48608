"""What every builder of one cluster shares: the model, the cluster's view, and derived answers.

Answers that several builders need (which namespaces may see a service here, its remote endpoints)
are computed once per cluster and service, so each builder stays a small function of the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from mesh.compile import ingress, meta, weights
from mesh.compile.options import CompileOptions
from mesh.manifest.schema import Service
from mesh.model import ClusterView, World


@dataclass(frozen=True)
class ClusterContext:
    world: World
    view: ClusterView
    options: CompileOptions
    # Answers that are the same in every cluster (e.g. a service's caller identities), computed by
    # the first cluster that asks, within one compile. Builders copy before emitting.
    fleet_cache: dict[tuple[str, str], Any] = field(default_factory=dict, compare=False, repr=False)
    _exports: dict[str, list[str]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def cluster(self) -> str:
        return self.view.name

    def service(self, name: str) -> Service:
        return self.world.services[name]

    def runs(self, service: str) -> bool:
        return service in self._running

    @cached_property
    def _running(self) -> frozenset[str]:  # asked ~4 times per object: a set, not the (service, cluster) map
        return frozenset(self.view.running)

    def called_here(self, service: str) -> bool:
        return service in self.view.local_callers

    def ingress_here(self, service: str) -> bool:
        """Does this cluster's ingress gateway publish `service`? Where it runs: each cluster
        publishes its own services, and reaches the service elsewhere only on failover."""
        return self.runs(service) and ingress.published_port(self.service(service)) is not None

    def dialled_here(self, service: str) -> bool:
        """Does anything here open connections to `service`: a local caller or the ingress gateway?"""
        return self.called_here(service) or self.ingress_here(service)

    def exposed(self, service: str) -> bool:
        """Does this cluster's east-west gateway serve `service` to other clusters? To their
        callers, and to their ingress gateways failing over (every cluster running a published
        service publishes it)."""
        if not self.runs(service):
            return False
        if self.world.has_callers_elsewhere(service, self.cluster):
            return True
        return self.ingress_here(service) and len(self.world.clusters_of(service)) > 1

    def config_namespace(self, service: str) -> str:
        """Where `service`'s ServiceEntry, DestinationRule and VirtualService live here: its own
        namespace where it runs (the entry's workloadSelector picks pods and WorkloadEntries of its
        own namespace only), else the one config-only `mesh-imports`, so a cluster that only calls
        a service needs no namespace for it. Istio finds the rule there: a proxy's DestinationRule
        is looked up in its own namespace, then the service's (a ServiceEntry's is the one it lives
        in), then the root namespace (istio/istio pilot/pkg/model/push_context.go `destinationRule`);
        Sidecar imports `<namespace>/<host>` select entries and VirtualServices by that namespace."""
        return self.service(service).namespace if self.runs(service) else meta.IMPORTS_NAMESPACE

    def export_to(self, service: str) -> list[str]:
        """Namespaces that may see `service`'s SE/DR here: its own where it runs, its local callers',
        and the east-west gateway's where this cluster serves it to others (unknown SNI is reset there)."""
        cached = self._exports.get(service)
        if cached is None:
            namespace_of = self.world.namespace_of
            namespaces = {namespace_of[service]} if self.runs(service) else set()
            namespaces.update(namespace_of[c] for c in self.view.local_callers.get(service, ()))
            if self.exposed(service):
                namespaces.add(meta.ISTIO_SYSTEM)
            if self.ingress_here(service):
                # the north-south gateway routes to the public host (local pods, then other clusters)
                namespaces.add(self.world.fleet.ingress_gateway.namespace)
            cached = self._exports[service] = sorted(namespaces)
        return list(cached)  # a fresh list per object: outputs never share mutable parts

    @cached_property
    def imports(self) -> bool:
        """Does this cluster call a service it does not run (and so need `mesh-imports`)?"""
        return any(not self.runs(name) for name in self.view.needed)

    def caller_namespaces(self, service: str) -> list[str]:
        namespace_of = self.world.namespace_of
        return sorted({namespace_of[c] for c in self.view.local_callers.get(service, ())})

    def san(self, service: str) -> str:
        return self.world.san_of[service]

    def principal(self, namespace: str, service_account: str) -> str:
        # AuthorizationPolicy principals carry no `spiffe://` scheme, unlike SANs.
        return f"{self.world.fleet.trust_domain}/ns/{namespace}/sa/{service_account}"

    def remote_endpoints(self, service: str) -> list[tuple[str, dict[str, Any]]]:
        """(cluster, endpoint) per other cluster running `service`, at its east-west gateway; only
        where something here dials it (a cluster that only serves needs no way out). The endpoint
        is in ServiceEntry `endpoints` form; WorkloadEntries add the service's workload labels."""
        if not self.dialled_here(service):
            return []
        port_names = [port.name for port in self.service(service).ports]
        weighted = self.world.is_weighted(service)
        endpoints = []
        for placement in self.world.placements[service]:
            if placement.cluster == self.cluster:
                continue
            labels = {
                meta.TLS_MODE_LABEL: "istio",
                meta.CLUSTER_LABEL: placement.cluster,
            }
            if self.world.has_standby(service):
                labels[meta.ROLE_LABEL] = placement.role
                if placement.role == "standby":
                    labels[meta.STANDBY_LABEL] = "true"
            endpoints.append((placement.cluster, {
                "address": self.world.east_west_address(self.cluster, placement.cluster),
                "ports": dict.fromkeys(port_names, meta.EASTWEST_PORT),
                "labels": labels,
                "network": self.world.istio_network(placement.cluster),
                # a weighted service's endpoint needs its cluster's own locality key (`weights`)
                "locality": weights.endpoint_locality(self.world, placement.cluster) if weighted
                else self.world.locality(placement.cluster),
            }))
        return endpoints

    @cached_property
    def running_namespaces(self) -> dict[str, list[str]]:
        """Namespace → services running in it here (both sorted)."""
        out: dict[str, list[str]] = {}
        for name in self.view.running:
            out.setdefault(self.service(name).namespace, []).append(name)
        return dict(sorted(out.items()))
