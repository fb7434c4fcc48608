"""Egress beyond the mesh: which approved external destinations a cluster needs, and how they leave.

Demand-driven like everything else: a cluster holds an external destination's config only if a
service running there calls it (or it is `allWorkloads`), with only the host entries and ports the
callers here use, visible only to the callers' namespaces. Its ServiceEntry, VirtualService and TLS
DestinationRules live in one config namespace, `mesh-external`, which no workload runs in, so a
Sidecar import names exactly the destination (`mesh-external/<host>`).

Two ways out:
- **direct** (default): the caller's sidecar sends the traffic to the destination itself
  (`MESH_EXTERNAL` ServiceEntry; DNS for exact hosts, else the caller's original destination inside
  fixed `addresses`); with `originateTls` the caller speaks HTTP and the sidecar originates TLS
  (istio.io docs/tasks/traffic-management/egress/egress-tls-origination/: ServiceEntry port
  `targetPort: 443` + DestinationRule `tls.mode: SIMPLE`);
- **through the egress gateway** (`egressGateway: true`): Istio's egress-gateway pattern, every hop
  mutually authenticated (docs/tasks/traffic-management/egress/egress-gateway/ and
  egress-gateway-tls-origination/): the sidecar sends the call over Istio mTLS to the gateway
  (`ISTIO_MUTUAL` subset with `sni: <host>`), the gateway terminates it and forwards to the
  destination, and an AuthorizationPolicy on the gateway admits exactly the local callers'
  principals for exactly that SNI and gateway port. TLS, HTTPS and TCP ports ride as opaque bytes
  inside the mTLS (gateway port 443, `protocol: TLS`, `ISTIO_MUTUAL`, then a TCP route); HTTP
  ports enter on 80 (`protocol: HTTPS`, `ISTIO_MUTUAL`), where the gateway can originate TLS.

The gateway itself (the `gateway` chart as `istio-egressgateway` in `istio-egress`, ClusterIP) is
installed by the Pulumi program exactly where `gateway_clusters` says.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from mesh.compile import meta
from mesh.manifest.egress_rules import EGRESS_NAMESPACE, EXTERNAL_NAMESPACE
from mesh.manifest.schema import External, ExternalPort
from mesh.model import ExternalCall, World

if TYPE_CHECKING:
    from mesh.compile.context import ClusterContext

__all__ = ["EGRESS_NAMESPACE", "EXTERNAL_NAMESPACE"]

EXTERNAL_LABEL = "fleet-mesh.io/external"
GATEWAY_RELEASE = "istio-egressgateway"  # Helm release and Service name; also its service account
GATEWAY_SERVICE_ACCOUNT = "istio-egressgateway"
GATEWAY_SELECTOR = {"istio": "egressgateway"}  # set by the gateway chart from its release name
GATEWAY_NAME = "egress-gateway"
GATEWAY_TLS_PORT = 443  # TLS / HTTPS / TCP ride inside Istio mTLS on the gateway's 443
GATEWAY_HTTP_PORT = 80  # HTTP rides inside Istio mTLS on the gateway's 80 (the gateway may originate TLS)
DEFAULT_TLS_PORT = 443


def gateway_host(cluster_domain: str) -> str:
    return f"{GATEWAY_RELEASE}.{EGRESS_NAMESPACE}.svc.{cluster_domain}"


def gateway_ref() -> str:
    return f"{EGRESS_NAMESPACE}/{GATEWAY_NAME}"


def gateway_clusters(world: World) -> list[str]:
    """Clusters where the egress gateway must be installed: a caller of a gateway destination runs there."""
    return sorted({c for name, ext in world.externals.items() if ext.egress_gateway
                   for c in world.external_clusters(name)})


def port_name(port: ExternalPort) -> str:
    return f"{port.protocol.lower()}-{port.number}"


def resolution(external: External) -> str:
    """DNS for exact hosts; otherwise the caller's original destination, which must lie in the addresses
    (or, for TLS/HTTP on a wildcard, whatever the caller resolved: matched by SNI or Host)."""
    if external.addresses or any(h.startswith("*.") for h in external.hosts):
        return "NONE"
    return "DNS"


def target_port(port: ExternalPort) -> int:
    return port.target_port or DEFAULT_TLS_PORT


def originates(external: External, port: ExternalPort) -> bool:
    return external.originate_tls and port.protocol == "HTTP"


def gateway_port(port: ExternalPort) -> int:
    return GATEWAY_HTTP_PORT if port.protocol == "HTTP" else GATEWAY_TLS_PORT


def labels(external: str) -> dict[str, str]:
    return {EXTERNAL_LABEL: external}


# ------------------------------------------------------------------------------ per cluster


def called_here(ctx: ClusterContext) -> Mapping[str, tuple[ExternalCall, ...]]:
    """External → the calls to it from services running here (sorted; empty where none)."""
    return ctx.world.external_callers(ctx.cluster)


def external(ctx: ClusterContext, name: str) -> External:
    return ctx.world.externals[name]


def hosts_here(ctx: ClusterContext, name: str) -> list[str]:
    """The external's host entries called from here, in declared order."""
    called = {h for call in called_here(ctx)[name] for h in call.hosts}
    return [h for h in external(ctx, name).hosts if h in called]


def ports_here(ctx: ClusterContext, name: str) -> list[ExternalPort]:
    """The external's ports called from here, in declared order."""
    return ports_of(external(ctx, name), called_here(ctx)[name])


def ports_of(ext: External, calls: tuple[ExternalCall, ...] | list[ExternalCall]) -> list[ExternalPort]:
    if any(call.ports is None for call in calls):
        return list(ext.ports)
    numbers = {n for call in calls for n in call.ports or ()}
    return [p for p in ext.ports if p.number in numbers]


def caller_namespaces(ctx: ClusterContext, name: str) -> list[str]:
    return sorted({ctx.service(call.caller).namespace for call in called_here(ctx)[name]})


def export_to(ctx: ClusterContext, name: str) -> list[str]:
    """The callers' namespaces here, and the egress gateway's where the traffic leaves through it.
    An `allWorkloads` destination is called from every namespace with workloads: `*`, which also
    keeps a service's move from touching it (the Sidecars still import it explicitly)."""
    if external(ctx, name).all_workloads:
        return ["*"]
    namespaces = set(caller_namespaces(ctx, name))
    if external(ctx, name).egress_gateway:
        namespaces.add(EGRESS_NAMESPACE)
    return sorted(namespaces)


def through_gateway(ctx: ClusterContext) -> list[str]:
    """Externals called from here that leave through this cluster's egress gateway (sorted)."""
    return [name for name in called_here(ctx) if external(ctx, name).egress_gateway]


def sidecar_hosts(ctx: ClusterContext, services: list[str]) -> Iterator[str]:
    """Sidecar egress imports for the externals `services` (one namespace's, running here) call."""
    mine = set(services)
    gateway = False
    for name, calls in called_here(ctx).items():
        for call in calls:
            if call.caller in mine:
                yield from (f"{EXTERNAL_NAMESPACE}/{h}" for h in call.hosts)
                gateway = gateway or external(ctx, name).egress_gateway
    if gateway:
        yield f"{EGRESS_NAMESPACE}/{gateway_host(ctx.options.cluster_domain)}"


def build_namespace(ctx: ClusterContext) -> Iterator[meta.Obj]:
    """The config namespace, where any external destination is configured here. No workload runs in
    it, so it carries no injection label."""
    if called_here(ctx):
        yield meta.new("v1", "Namespace", EXTERNAL_NAMESPACE, None, None)
