"""Namespace: every namespace a service runs in here, labelled for sidecar injection, and the
config-only `mesh-imports` where this cluster calls a service it does not run.

A service's own namespace exists only where it runs: that is where its pods, WorkloadEntries,
Sidecar and AuthorizationPolicies are. The entries, rules and routes for services called here but
running elsewhere all live in `mesh-imports`, exported only to their callers' namespaces
(`context.config_namespace`), so a caller-only cluster gets one namespace, not one per callee. No
workload runs in it, so — like `mesh-external` — it carries no injection label.
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.compile import meta
from mesh.compile.context import ClusterContext


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    injection = (
        {"istio.io/rev": ctx.options.revision}
        if ctx.options.revision
        else {"istio-injection": "enabled"}
    )
    for namespace in ctx.running_namespaces:
        yield meta.new("v1", "Namespace", namespace, None, None, labels=injection)
    if ctx.imports:
        yield meta.new("v1", "Namespace", meta.IMPORTS_NAMESPACE, None, None)
