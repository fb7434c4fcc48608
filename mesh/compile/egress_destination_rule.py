"""DestinationRules for the way out: TLS origination towards external hosts, and mTLS to the egress gateway.

- `<external>` (or `<external>-<n>` per further host) in `mesh-external`, where TLS is originated:
  `portLevelSettings` on each HTTP port, `tls.mode: SIMPLE` with the host as `sni`. Exported to the
  callers' namespaces when their sidecars originate; only to the egress gateway's namespace when
  the gateway does (docs/tasks/traffic-management/egress/egress-gateway-tls-origination/).
- `egress-gateway` in `istio-egress`, where any call leaves through the gateway: the gateway
  Service's host, one subset per external, each port `ISTIO_MUTUAL` with `sni: <host>` — the SNI
  the gateway's servers and authorization match on. In the gateway Service's own namespace, which
  is where Istio looks for a host's DestinationRule after the caller's; exported to the callers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesh.compile import egress, meta
from mesh.compile.context import ClusterContext


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    for name in egress.called_here(ctx):
        ext = egress.external(ctx, name)
        originating = [p for p in egress.ports_here(ctx, name) if egress.originates(ext, p)]
        if not originating:
            continue
        export = [egress.EGRESS_NAMESPACE] if ext.egress_gateway else egress.export_to(ctx, name)
        hosts = egress.hosts_here(ctx, name)
        for host in hosts:
            index = ext.hosts.index(host)
            yield meta.new(
                meta.NETWORKING, "DestinationRule", name if index == 0 else f"{name}-{index}",
                egress.EXTERNAL_NAMESPACE,
                {
                    "host": host,
                    "exportTo": list(export),
                    "trafficPolicy": {"portLevelSettings": [
                        {"port": {"number": p.number}, "tls": {"mode": "SIMPLE", "sni": host}} for p in originating
                    ]},
                },
                labels=egress.labels(name),
            )
    yield from _gateway_rule(ctx)


def _gateway_rule(ctx: ClusterContext) -> Iterator[meta.Obj]:
    names = egress.through_gateway(ctx)
    if not names:
        return
    subsets: list[dict[str, Any]] = []
    namespaces: set[str] = set()
    for name in names:
        [host] = egress.external(ctx, name).hosts
        gateway_ports = sorted({egress.gateway_port(p) for p in egress.ports_here(ctx, name)})
        subsets.append({"name": name, "trafficPolicy": {"portLevelSettings": [
            {"port": {"number": number}, "tls": {"mode": "ISTIO_MUTUAL", "sni": host}} for number in gateway_ports
        ]}})
        namespaces.update(egress.export_to(ctx, name))
    namespaces.discard(egress.EGRESS_NAMESPACE)
    if "*" in namespaces:
        namespaces = {"*"}
    yield meta.new(
        meta.NETWORKING, "DestinationRule", egress.GATEWAY_NAME, egress.EGRESS_NAMESPACE,
        {
            "host": egress.gateway_host(ctx.options.cluster_domain),
            "exportTo": sorted(namespaces),
            "subsets": subsets,
        },
    )
