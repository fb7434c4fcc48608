"""VirtualService: `https://<host>` at this cluster's ingress gateway → the service's public host.

One per service published here, in the ingress namespace (where the gateway's hosts let it bind),
exported only there, bound only to the ingress Gateway: sidecars never see it, and the service's
mesh VirtualService (same name, the service's namespace, exported to its callers) is untouched.
The route is the one mesh callers get — timeout, retries — on the published port, and the
service's DestinationRule here applies to the gateway too, so it prefers local pods and fails over
(or splits by weight) like any caller here.
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.compile import ingress, meta, virtual_service
from mesh.compile.context import ClusterContext


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    fleet = ctx.world.fleet
    for name in ctx.view.running:
        service = ctx.service(name)
        port = ingress.published_port(service)
        if port is None or not ctx.ingress_here(name):
            continue
        route = virtual_service.http_route(ctx, service, port, by_port=False)
        yield meta.new(
            meta.NETWORKING, "VirtualService", name, fleet.ingress_gateway.namespace,
            {
                "hosts": [service.host],
                "gateways": [ingress.gateway_ref(fleet)],
                "exportTo": ["."],
                "http": [route],
            },
            service=name, source=ctx.world.sources[name],
        )
