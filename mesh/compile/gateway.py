"""Gateway: the east-west gateway's single 15443 AUTO_PASSTHROUGH server.

`hosts` lists exactly the services this cluster runs that are called from other clusters — or
published by their ingress gateways, which fail over here — so the gateway builds filter chains for
nothing else (SNI outside the list is reset). Clusters that serve nobody elsewhere get no Gateway at
all. (The north-south ingress Gateway is `ingress_gateway`.)
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.compile import meta
from mesh.compile.context import ClusterContext

NAME = "cross-network-gateway"


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    hosts = sorted(ctx.service(name).host for name in ctx.view.running if ctx.exposed(name))
    if not hosts:
        return
    yield meta.new(
        meta.NETWORKING, "Gateway", NAME, meta.ISTIO_SYSTEM,
        {
            "selector": dict(meta.EASTWEST_SELECTOR),
            "servers": [
                {
                    "port": {"number": meta.EASTWEST_PORT, "name": "tls", "protocol": "TLS"},
                    "tls": {"mode": "AUTO_PASSTHROUGH"},
                    "hosts": hosts,
                }
            ],
        },
    )
