"""VirtualService: timeouts and retries, where a service asks for them.

Only in clusters that call the service, visible only to the calling namespaces; retries may go to
other localities when the service runs in more than one cluster. Weighted locations need no route:
the DestinationRule's locality weights split the calls (see `weights`), so a TCP-only weighted
service gets no VirtualService either. It lives beside the service's ServiceEntry
(`context.config_namespace`): a Sidecar import `<namespace>/<host>` takes in only the
VirtualServices of that namespace.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesh.compile import meta
from mesh.compile.context import ClusterContext
from mesh.manifest.schema import Port, Service


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    for name in ctx.view.needed:
        if not ctx.called_here(name):
            continue
        service = ctx.service(name)
        traffic = service.traffic
        if not (traffic and (traffic.timeout or traffic.retries)):
            continue
        spec = _spec(ctx, service)
        if "http" in spec:  # TCP-only: no timeouts to set
            yield meta.new(meta.NETWORKING, "VirtualService", name, ctx.config_namespace(name), spec,
                           service=name, source=ctx.world.sources[name])


def _spec(ctx: ClusterContext, service: Service) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": [service.host], "exportTo": ctx.caller_namespaces(service.name)}
    http_ports = [p for p in service.ports if p.protocol in meta.HTTP_FAMILY]
    if http_ports:
        spec["http"] = [http_route(ctx, service, port, by_port=len(http_ports) > 1) for port in http_ports]
    return spec


def http_route(ctx: ClusterContext, service: Service, port: Port, *, by_port: bool) -> dict[str, Any]:
    """The route to `port` every caller here gets, mesh or ingress: the service's own traffic policy."""
    route: dict[str, Any] = {}
    if by_port:
        route["match"] = [{"port": port.number}]
    route["route"] = [{"destination": {"host": service.host, "port": {"number": port.number}}}]
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

