"""AuthorizationPolicy on the egress gateway: exactly the declared callers, for exactly their destinations.

Where the gateway runs: `istio-egress/default-deny` (an ALLOW policy with no rules), and per external
leaving through it `<external>-callers`, admitting the principals of the callers running in this
cluster (the only ones whose sidecars route to this gateway) on the gateway port their calls arrive
on, when the connection's SNI is the destination's host — the SNI the callers' DestinationRule
subset sets. Anything else reaching the gateway, with any identity, is denied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from mesh.compile import egress, meta
from mesh.compile.context import ClusterContext

DEFAULT_DENY = "default-deny"


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    names = egress.through_gateway(ctx)
    if not names:
        return
    yield meta.new(meta.SECURITY, "AuthorizationPolicy", DEFAULT_DENY, egress.EGRESS_NAMESPACE, {})
    for name in names:
        ext = egress.external(ctx, name)
        [host] = ext.hosts
        by_ports: dict[tuple[int, ...], set[str]] = defaultdict(set)
        for call in egress.called_here(ctx)[name]:
            caller = ctx.service(call.caller)
            ports = tuple(sorted({egress.gateway_port(p) for p in egress.ports_of(ext, [call])}))
            by_ports[ports].add(ctx.principal(caller.namespace, caller.service_account))
        yield meta.new(
            meta.SECURITY, "AuthorizationPolicy", f"{name}-callers", egress.EGRESS_NAMESPACE,
            {
                "selector": {"matchLabels": dict(egress.GATEWAY_SELECTOR)},
                "action": "ALLOW",
                "rules": [
                    {
                        "from": [{"source": {"principals": sorted(principals)}}],
                        "to": [{"operation": {"ports": [str(p) for p in ports]}}],
                        "when": [{"key": "connection.sni", "values": [host]}],
                    }
                    for ports, principals in sorted(by_ports.items())
                ],
            },
            labels=egress.labels(name),
        )
