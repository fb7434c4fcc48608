"""Namespace: every namespace holding a service's config here, labelled for sidecar injection.

A caller-only cluster still needs the callee's namespace: its ServiceEntry, WorkloadEntries and
DestinationRule live there (notes/istio.md §8).
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.compile import meta
from mesh.compile.context import ClusterContext


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    namespaces = sorted({ctx.service(name).namespace for name in ctx.view.needed})
    injection = (
        {"istio.io/rev": ctx.options.revision}
        if ctx.options.revision
        else {"istio-injection": "enabled"}
    )
    for namespace in namespaces:
        yield meta.new("v1", "Namespace", namespace, None, None, labels=injection)
