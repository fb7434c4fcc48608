"""WorkloadEntry: another cluster running a service that also runs here, as one endpoint.

It must share the local pods' ServiceEntry, so it carries the service's workload labels and lives
in its namespace. The address is that cluster's east-west gateway (internal on a shared network,
external otherwise), every port maps to 15443, and the network is that cluster's own — never the
caller's — so the sidecar dials it directly instead of looking for a local gateway.
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.compile import meta
from mesh.compile.context import ClusterContext


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    for name in ctx.view.needed:
        if not ctx.runs(name):
            continue  # the ServiceEntry carries inline endpoints instead
        service = ctx.service(name)
        for cluster, spec in ctx.remote_endpoints(name):
            spec["labels"] = dict(sorted({**service.workload_labels, **spec["labels"]}.items()))
            yield meta.new(
                # "." cannot occur in a service or cluster name: `a-b` + `c` never meets `a` + `b-c`.
                meta.NETWORKING, "WorkloadEntry", f"{name}.{cluster}",
                service.namespace, spec, service=name, source=ctx.world.sources[name],
            )
