"""AuthorizationPolicy: deny by default, allow exactly the declared callers.

Each namespace with workloads here gets `default-deny` (an ALLOW policy with no rules). Each
service running here gets `<service>-callers`, allowing its declared callers' identities on the
ports they call — wherever the caller runs, since east-west traffic is passed through and the
destination sees the caller's own certificate. A service marked `ingress` also admits the fleet's
ingress gateway, on the one port it publishes (`ingress.published_port`), in every cluster running
it: a gateway failing over is let through by the remote east-west gateway with its own identity.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from mesh.compile import ingress, meta
from mesh.compile.context import ClusterContext

DEFAULT_DENY = "default-deny"


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    for namespace, services in ctx.running_namespaces.items():
        yield meta.new(meta.SECURITY, "AuthorizationPolicy", DEFAULT_DENY, namespace, {})
        for name in services:
            rules = _rules(ctx, name)
            if rules:
                service = ctx.service(name)
                yield meta.new(
                    meta.SECURITY, "AuthorizationPolicy", f"{name}-callers", namespace,
                    {
                        "selector": {"matchLabels": service.workload_labels},
                        "action": "ALLOW",
                        "rules": rules,
                    },
                    service=name, source=ctx.world.sources[name],
                )


def _rules(ctx: ClusterContext, name: str) -> list[dict[str, Any]]:
    """One rule per distinct port set, listing every caller principal allowed on it."""
    key = ("authorization-rules", name)
    if key not in ctx.fleet_cache:  # the same in every cluster running the service
        ctx.fleet_cache[key] = _grouped_principals(ctx, name)
    return [
        {
            "from": [{"source": {"principals": list(principals)}}],
            "to": [{"operation": {"ports": [str(port) for port in ports]}}],
        }
        for ports, principals in ctx.fleet_cache[key]
    ]


def _grouped_principals(ctx: ClusterContext, name: str) -> list[tuple[tuple[int, ...], tuple[str, ...]]]:
    service = ctx.service(name)
    all_ports = tuple(sorted(port.number for port in service.ports))
    by_ports: dict[tuple[int, ...], set[str]] = defaultdict(set)
    for call in ctx.world.callers(name):
        caller = ctx.service(call.caller)
        by_ports[call.ports or all_ports].add(ctx.principal(caller.namespace, caller.service_account))
    published = ingress.published_port(service)
    if published is not None:
        gateway = ctx.world.fleet.ingress_gateway
        by_ports[(published.number,)].add(ctx.principal(gateway.namespace, gateway.service_account))
    return [(ports, tuple(sorted(principals))) for ports, principals in sorted(by_ports.items())]
