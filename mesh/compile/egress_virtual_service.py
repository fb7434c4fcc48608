"""VirtualService sending an external destination's calls through the egress gateway.

One per external that leaves through the gateway, in `mesh-external`, bound to `mesh` and the
egress Gateway, exported to the callers' namespaces and the gateway's. Two legs per port, as in
istio.io docs/tasks/traffic-management/egress/egress-gateway/:
- at the callers' sidecars (`gateways: [mesh]`): TLS/HTTPS by SNI, TCP and HTTP by port, to the
  gateway Service's subset for this external (mTLS with the host as SNI: `egress_destination_rule`);
- at the gateway: from the gateway port the leg arrived on to the host and the port the caller dialled
  (a TCP route for what rode as opaque bytes on 443, an HTTP route for HTTP on 80).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesh.compile import egress, meta
from mesh.compile.context import ClusterContext


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    gateway_host = egress.gateway_host(ctx.options.cluster_domain)
    gateway = egress.gateway_ref()
    for name in egress.through_gateway(ctx):
        [host] = egress.external(ctx, name).hosts
        routes: dict[str, list[dict[str, Any]]] = {"http": [], "tls": [], "tcp": []}
        for port in egress.ports_here(ctx, name):
            via = egress.gateway_port(port)
            to_gateway = [{"destination": {"host": gateway_host, "subset": name, "port": {"number": via}}}]
            to_host = [{"destination": {"host": host, "port": {"number": port.number}}}]
            if port.protocol == "HTTP":
                routes["http"].append({"match": [{"gateways": ["mesh"], "port": port.number}], "route": to_gateway})
                routes["http"].append({"match": [{"gateways": [gateway], "port": via}], "route": to_host})
                continue
            if port.protocol in ("TLS", "HTTPS"):
                routes["tls"].append({"match": [{"gateways": ["mesh"], "port": port.number, "sniHosts": [host]}],
                                      "route": to_gateway})
            else:
                routes["tcp"].append({"match": [{"gateways": ["mesh"], "port": port.number}], "route": to_gateway})
            routes["tcp"].append({"match": [{"gateways": [gateway], "port": via}], "route": to_host})
        spec: dict[str, Any] = {
            "hosts": [host],
            "gateways": ["mesh", gateway],
            "exportTo": egress.export_to(ctx, name),
        }
        spec.update({kind: items for kind, items in routes.items() if items})
        yield meta.new(meta.NETWORKING, "VirtualService", name, egress.EXTERNAL_NAMESPACE, spec,
                       labels=egress.labels(name))
