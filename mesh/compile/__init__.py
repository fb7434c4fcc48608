"""The compiler: world model in, every cluster's Kubernetes objects out (plain dicts).

Pure and deterministic: no I/O, no globals, sorted output. One builder per kind of object, run in
the order a cluster should apply them (namespaces before the objects inside them); within a kind,
objects are sorted by namespace and name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mesh import gcpause
from mesh.compile import (
    authorization_policy,
    destination_rule,
    egress,
    egress_authorization_policy,
    egress_destination_rule,
    egress_gateway,
    egress_service_entry,
    egress_virtual_service,
    gateway,
    ingress_gateway,
    ingress_virtual_service,
    namespace,
    peer_authentication,
    service_entry,
    sidecar,
    virtual_service,
    workload_entry,
)
from mesh.compile.context import ClusterContext
from mesh.compile.meta import Obj, object_key
from mesh.compile.options import CompileOptions
from mesh.model import World

Builder = Callable[[ClusterContext], Iterable[Obj]]

# (kind, builder) in apply order. The kind names the render file and the diff section; a kind
# may have several builders (east-west and ingress Gateways), whose objects share its file.
BUILDERS: tuple[tuple[str, Builder], ...] = (
    ("Namespace", namespace.build),
    ("Namespace", egress.build_namespace),
    ("PeerAuthentication", peer_authentication.build),
    ("Gateway", gateway.build),
    ("Gateway", ingress_gateway.build),
    ("Gateway", egress_gateway.build),
    ("ServiceEntry", service_entry.build),
    ("ServiceEntry", egress_service_entry.build),
    ("WorkloadEntry", workload_entry.build),
    ("DestinationRule", destination_rule.build),
    ("DestinationRule", egress_destination_rule.build),
    ("VirtualService", virtual_service.build),
    ("VirtualService", ingress_virtual_service.build),
    ("VirtualService", egress_virtual_service.build),
    ("Sidecar", sidecar.build),
    ("AuthorizationPolicy", authorization_policy.build),
    ("AuthorizationPolicy", egress_authorization_policy.build),
)

KINDS = tuple(dict.fromkeys(kind for kind, _ in BUILDERS))


def compile_cluster(
    world: World, cluster: str, options: CompileOptions | None = None, fleet_cache: dict[Any, Any] | None = None
) -> list[Obj]:
    """Every object `cluster` needs, in apply order."""
    ctx = ClusterContext(world, world.views[cluster], options or CompileOptions(),
                         {} if fleet_cache is None else fleet_cache)
    by_kind: dict[str, list[Obj]] = {kind: [] for kind in KINDS}
    for kind, build in BUILDERS:
        by_kind[kind].extend(build(ctx))
    return [obj for kind in KINDS for obj in sorted(by_kind[kind], key=object_key)]


def compile_fleet(world: World, options: CompileOptions | None = None,
                  clusters: Iterable[str] | None = None) -> dict[str, list[Obj]]:
    """`{cluster: objects}` for every cluster of the fleet (or of `clusters`, a shard: the model is
    still the whole fleet, only the output is limited), clusters in name order."""
    fleet_cache: dict[Any, Any] = {}
    wanted = set(world.clusters if clusters is None else clusters)
    with gcpause.paused():
        return {name: compile_cluster(world, name, options, fleet_cache) for name in world.clusters if name in wanted}


__all__ = ["BUILDERS", "KINDS", "CompileOptions", "compile_cluster", "compile_fleet"]
