"""Gateway: the ingress gateway's HTTPS servers, one per domain, listing the services published here.

Only in clusters running a published `ingress: true` service (the gateway is installed exactly
there). Each server terminates TLS on 443 with the domain's wildcard certificate
(`ingress.credential_name`), TLS 1.2 at least. Hosts are written `<ingress-namespace>/<host>`, so
only VirtualServices in the ingress namespace — the ones compiled here — can bind to them: a team
cannot publish a route for a host by writing a VirtualService in its own namespace. No port-80
redirect server: the load balancer does not forward 80.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from mesh.compile import ingress, meta
from mesh.compile.context import ClusterContext


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    fleet = ctx.world.fleet
    namespace = fleet.ingress_gateway.namespace
    by_domain: dict[str, list[str]] = defaultdict(list)
    for name in ctx.view.running:
        if ctx.ingress_here(name):
            host = ctx.service(name).host
            by_domain[ingress.domain_of(fleet, host)].append(f"{namespace}/{host}")
    if not by_domain:
        return
    yield meta.new(
        meta.NETWORKING, "Gateway", ingress.GATEWAY_NAME, namespace,
        {
            "selector": dict(ingress.SELECTOR),
            "servers": [
                {
                    "port": {"number": ingress.PORT, "name": ingress.server_port_name(domain), "protocol": "HTTPS"},
                    "hosts": sorted(hosts),
                    "tls": {
                        "mode": "SIMPLE",
                        "credentialName": ingress.credential_name(domain),
                        "minProtocolVersion": ingress.MIN_TLS,
                    },
                }
                for domain, hosts in sorted(by_domain.items())
            ],
        },
    )
