"""VirtualService: timeouts, retries and weighted splits, where a service asks for them.

Only in clusters that call the service, visible only to the calling namespaces. Weighted locations
route to one DestinationRule subset per cluster, so the split holds whatever the caller's locality;
retries may go to other localities when the service runs in more than one cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesh.compile import meta
from mesh.compile.context import ClusterContext
from mesh.compile.destination_rule import subset_name
from mesh.manifest.schema import Port, Service


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    for name in ctx.view.needed:
        if not ctx.called_here(name):
            continue
        service = ctx.service(name)
        traffic = service.traffic
        weighted = ctx.world.is_weighted(name)
        if not (weighted or (traffic and (traffic.timeout or traffic.retries))):
            continue
        spec = _spec(ctx, service, weighted)
        if any(kind in spec for kind in ("http", "tcp", "tls")):  # TCP-only: no timeouts to set
            yield meta.new(meta.NETWORKING, "VirtualService", name, service.namespace, spec,
                           service=name, source=ctx.world.sources[name])


def _spec(ctx: ClusterContext, service: Service, weighted: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": [service.host], "exportTo": ctx.caller_namespaces(service.name)}
    http_ports = [p for p in service.ports if p.protocol in meta.HTTP_FAMILY]
    if http_ports:
        spec["http"] = [http_route(ctx, service, port, by_port=len(http_ports) > 1, weighted=weighted)
                        for port in http_ports]
    if weighted:
        tcp = [p for p in service.ports if p.protocol == "TCP"]
        tls = [p for p in service.ports if p.protocol == "TLS"]
        if tcp:
            spec["tcp"] = [{"match": [{"port": p.number}], "route": _route(ctx, service, p)} for p in tcp]
        if tls:
            spec["tls"] = [
                {"match": [{"port": p.number, "sniHosts": [service.host]}], "route": _route(ctx, service, p)}
                for p in tls
            ]
    return spec


def http_route(ctx: ClusterContext, service: Service, port: Port, *, by_port: bool, weighted: bool) -> dict[str, Any]:
    """The route to `port` every caller here gets, mesh or ingress: the service's own traffic policy."""
    route: dict[str, Any] = {}
    if by_port:
        route["match"] = [{"port": port.number}]
    route["route"] = _route(ctx, service, port) if weighted else [
        {"destination": {"host": service.host, "port": {"number": port.number}}}
    ]
    traffic = service.traffic
    if traffic and traffic.timeout:
        route["timeout"] = traffic.timeout
    if traffic and traffic.retries:
        retries: dict[str, Any] = {"attempts": traffic.retries.attempts}
        if traffic.retries.per_try_timeout:
            retries["perTryTimeout"] = traffic.retries.per_try_timeout
        if traffic.retries.retry_on:
            retries["retryOn"] = traffic.retries.retry_on
        if len(ctx.world.clusters_of(service.name)) > 1 and traffic.retries.attempts > 0:
            retries["retryRemoteLocalities"] = True
        route["retries"] = retries
    return route


def _route(ctx: ClusterContext, service: Service, port: Port) -> list[dict[str, Any]]:
    return [
        {
            "destination": {
                "host": service.host,
                "subset": subset_name(p.cluster),
                "port": {"number": port.number},
            },
            "weight": p.weight,
        }
        for p in ctx.world.placements[service.name]
    ]
