"""DestinationRule: how callers here (and the ingress gateway) reach a service — mTLS, failover, ejection.

It lives beside the service's ServiceEntry (`context.config_namespace`, `mesh-imports` where the
service only is called here) with the same exports: Istio looks a caller's rule up in the caller's
namespace, then in the service's — a ServiceEntry's is the one it lives in — then in the root.

- `ISTIO_MUTUAL` with the service's SPIFFE SAN and no `sni`: the default SNI is what the remote
  east-west gateway routes on.
- `failoverPriority` keeps traffic in the caller's region, then its cluster, then zone. For
  primary/standby services a first entry ranks standbys last, so they take traffic only when no
  primary endpoint is healthy (see `_role_priority`).
- Outlier detection is what makes failover happen at all; one remote endpoint stands for a whole
  cluster, so `maxEjectionPercent` is 100. Gateway errors (502/503/504, connect failures) eject;
  application 500s do not. `minHealthPercent` is always explicit (Istio 1.31 changed what it does).
- Weighted services are split by locality weights (`distribute`, see `weights`) instead of
  priorities: Istio applies `distribute` and then no failover at all, so the rule carries no
  `failoverPriority`. No subsets: the SNI stays the plain `outbound_.<port>_._.<host>`, so clusters
  that only serve the service need no rule. Outlier detection stays: ejecting a dead cluster's one
  endpoint is what hands its share to the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesh.compile import meta, weights
from mesh.compile.context import ClusterContext
from mesh.manifest.schema import Outlier

LOCALITY_PRIORITY = (
    "topology.kubernetes.io/region",
    meta.NETWORK_LABEL,
    "topology.kubernetes.io/zone",
)


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    for name in ctx.view.needed:
        if ctx.dialled_here(name):
            yield _rule(ctx, name)


def _rule(ctx: ClusterContext, name: str) -> meta.Obj:
    service = ctx.service(name)
    locality: dict[str, Any] = {"enabled": True}
    if ctx.world.is_weighted(name):
        locality["distribute"] = weights.distribute(ctx.world, name, ctx.cluster)
    else:
        locality["failoverPriority"] = _priority(ctx, name)
    spec: dict[str, Any] = {
        "host": service.host,
        "exportTo": ctx.export_to(name),
        "trafficPolicy": {
            "loadBalancer": {"simple": ctx.options.load_balancer, "localityLbSetting": locality},
            "outlierDetection": _outlier(service.traffic.outlier if service.traffic else None),
            "tls": {"mode": "ISTIO_MUTUAL", "subjectAltNames": [ctx.san(name)]},
        },
    }
    return meta.new(meta.NETWORKING, "DestinationRule", name, ctx.config_namespace(name), spec,
                    service=name, source=ctx.world.sources[name])


def _priority(ctx: ClusterContext, name: str) -> list[str]:
    role = _role_priority(ctx, name)
    return ([role] if role else []) + list(LOCALITY_PRIORITY)


def _role_priority(ctx: ClusterContext, name: str) -> str | None:
    """The failoverPriority entry that ranks standbys below every primary.

    Istio compares each endpoint's label with the value after `=` (a missing label compares as
    empty). Local pods carry none of our labels, so the entry depends on the local role:
    - local primary (or none here): `standby=` — unlabelled local pods and primaries match,
      standbys (`standby: "true"`) drop to the lowest priority;
    - local standby: `role=primary` — only remote primaries match; local standby pods rank
      with the other standbys.
    """
    if not ctx.world.has_standby(name):
        return None
    if ctx.world.role_in(name, ctx.cluster) == "standby":
        return f"{meta.ROLE_LABEL}=primary"
    return f"{meta.STANDBY_LABEL}="


_DEFAULT_OUTLIER = Outlier()


def _outlier(policy: Outlier | None) -> dict[str, Any]:
    policy = policy or _DEFAULT_OUTLIER
    return {
        "consecutiveGatewayErrors": policy.consecutive_gateway_errors,
        "consecutive5xxErrors": 0,
        "interval": policy.interval,
        "baseEjectionTime": policy.base_ejection_time,
        "maxEjectionPercent": 100,
        "minHealthPercent": policy.min_health_percent,
    }
