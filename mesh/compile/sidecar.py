"""Sidecar: one namespace-wide Sidecar per namespace with workloads here.

Egress imports exactly the hosts the namespace's services call (as `<namespace>/<host>`, the
namespace where each ServiceEntry lives: the callee's own where it runs here, else `mesh-imports`),
plus `istio-system`, with REGISTRY_ONLY so anything else is refused; approved external
destinations the namespace calls are imported from `mesh-external` (and the egress gateway's
Service, where they leave through it). It is also the DNS view: with DNS
capture, only imported hosts resolve in-mesh. A namespace whose services call nothing still gets
one, so it stays REGISTRY_ONLY and small.
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.compile import egress, meta
from mesh.compile.context import ClusterContext


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    for namespace, services in ctx.running_namespaces.items():
        hosts = {f"{meta.ISTIO_SYSTEM}/*"}
        if ctx.options.namespace_local_egress:
            hosts.add(f"./*.svc.{ctx.options.cluster_domain}")
        for name in services:
            for call in ctx.world.callees(name):
                hosts.add(f"{ctx.config_namespace(call.callee)}/{ctx.service(call.callee).host}")
        hosts.update(egress.sidecar_hosts(ctx, services))
        yield meta.new(
            meta.NETWORKING, "Sidecar", "default", namespace,
            {
                "egress": [{"hosts": sorted(hosts)}],
                "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
            },
        )
