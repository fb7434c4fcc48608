"""ServiceEntry for an external destination: `MESH_EXTERNAL`, only where a caller runs.

In `mesh-external`, exported to the callers' namespaces here (and the egress gateway's, where the
traffic leaves through it), with only the host entries and ports called from here. Exact hosts
without addresses resolve by DNS; fixed addresses (a private managed service, Private Google
Access) or wildcards use `resolution: NONE`, forwarding to the address the caller dialled. An HTTP
port with TLS origination carries `targetPort` (443 by default): the caller dials plain HTTP,
the connection leaves as TLS (istio.io docs/tasks/traffic-management/egress/egress-tls-origination/).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesh.compile import egress, meta
from mesh.compile.context import ClusterContext


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    for name in egress.called_here(ctx):
        ext = egress.external(ctx, name)
        ports = []
        for port in egress.ports_here(ctx, name):
            item: dict[str, Any] = {"number": port.number, "name": egress.port_name(port), "protocol": port.protocol}
            if egress.originates(ext, port):
                item["targetPort"] = egress.target_port(port)
            ports.append(item)
        spec: dict[str, Any] = {
            "hosts": egress.hosts_here(ctx, name),
            "location": "MESH_EXTERNAL",
            "resolution": egress.resolution(ext),
            "ports": ports,
            "exportTo": egress.export_to(ctx, name),
        }
        if ext.addresses:
            spec["addresses"] = list(ext.addresses)
        yield meta.new(meta.NETWORKING, "ServiceEntry", name, egress.EXTERNAL_NAMESPACE, spec,
                       labels=egress.labels(name))
