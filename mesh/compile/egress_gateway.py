"""Gateway: the egress gateway's servers, one per external destination leaving through it here.

Only in clusters where a caller of such a destination runs (where the gateway is installed). Each
server terminates Istio mTLS (`ISTIO_MUTUAL`): on 443 (`protocol: TLS`) for what the caller sends as
TLS, HTTPS or TCP, on 80 (`protocol: HTTPS`) for HTTP — one server per host, so each SNI gets its own
filter chain and route. Hosts are written `mesh-external/<host>`: only the VirtualServices compiled
there can bind to them (istio.io docs/tasks/traffic-management/egress/egress-gateway/,
egress-gateway-tls-origination/).
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.compile import egress, meta
from mesh.compile.context import ClusterContext


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    servers = []
    for name in egress.through_gateway(ctx):
        [host] = egress.external(ctx, name).hosts
        for number in sorted({egress.gateway_port(p) for p in egress.ports_here(ctx, name)}, reverse=True):
            tls = number == egress.GATEWAY_TLS_PORT
            servers.append({
                "port": {"number": number, "name": f"{'tls' if tls else 'http'}-{name}",
                         "protocol": "TLS" if tls else "HTTPS"},
                "hosts": [f"{egress.EXTERNAL_NAMESPACE}/{host}"],
                "tls": {"mode": "ISTIO_MUTUAL"},
            })
    if not servers:
        return
    yield meta.new(meta.NETWORKING, "Gateway", egress.GATEWAY_NAME, egress.EGRESS_NAMESPACE,
                   {"selector": dict(egress.GATEWAY_SELECTOR), "servers": servers})
