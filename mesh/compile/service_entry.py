"""ServiceEntry: a service's public host, in every cluster that runs it or calls it.

The same host, port numbers and port names everywhere: the port travels in the SNI, and endpoint
port maps are keyed by name. Where the service runs here, the entry selects the local pods (and
the WorkloadEntries standing for other clusters); where it does not, the other clusters' east-west
gateways are inline endpoints, which saves one object per remote cluster. Such an imported entry
lives in `mesh-imports` (`context.config_namespace`), exported only to the callers' namespaces.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesh.compile import meta
from mesh.compile.context import ClusterContext


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    for name in ctx.view.needed:
        yield _entry(ctx, name)


def _entry(ctx: ClusterContext, name: str) -> meta.Obj:
    service = ctx.service(name)
    spec: dict[str, Any] = {
        "hosts": [service.host],
        "location": "MESH_INTERNAL",
        "resolution": "STATIC",
        "ports": [
            {"number": port.number, "name": port.name, "protocol": port.protocol}
            for port in service.ports
        ],
        "subjectAltNames": [ctx.san(name)],
        "exportTo": ctx.export_to(name),
    }
    if ctx.runs(name):
        spec["workloadSelector"] = {"labels": service.workload_labels}
    else:
        spec["endpoints"] = [endpoint for _, endpoint in ctx.remote_endpoints(name)]
    return meta.new(meta.NETWORKING, "ServiceEntry", name, ctx.config_namespace(name), spec,
                    service=name, source=ctx.world.sources[name])

