"""Weighted locations as locality weights: the `distribute` every cluster's proxies get for a service.

A weighted service is split by Envoy's locality-weighted load balancing instead of routes to
per-cluster subsets. Then an ejected cluster loses its share to the others in proportion to their
weights (effective locality weight = weight × availability) and gets it back when it recovers;
a route to a subset could only fail.

Keys. Istio weighs locality groups by `distribute.to`; a group matching no key is dropped; keys must
not overlap, take one `*` only at the end and no empty part (Istio 1.31, validation.go
`validateLocalities`). Clusters of one service often share region and zones, so only the subzone
can tell them apart: every node pool carries `topology.istio.io/subzone: <cluster>`
(mesh/infra/gke.py), so local pods group as `region/zone/<cluster>`, one group per zone, and a
remote cluster — one WorkloadEntry at its east-west gateway — is given `region/<first zone>/<cluster>`.
The caller's own cluster needs one key per zone (`region/*/<cluster>` would be one key, but Istio
rejects a wildcard before the end), hence every cluster of a weighted service lists its zones
(mesh/manifest/weight_rules.py).

Weights. Each key matches exactly one group, so Istio's split of a key among the groups it matches
(`ceil(group weight × key weight / matched weight)`, loadbalancer.go:457-462) gives the key weight
unchanged: a remote cluster gets its manifest weight, the local one its weight split evenly over
its zones (integers, the total exact). A zone needs at least 1: when a cluster has fewer points
than zones, its zones get 1 each, taken from the largest keys — from its own callers it then gets
up to `zones - 1` points more. A weight of 0 gets no key: that cluster takes no calls.

`from: "*"`: the rule is compiled per cluster, and every proxy that reads it here (sidecars, the
ingress gateway, the east-west gateway, which sees only local pods) wants the same split.
"""

from __future__ import annotations

from mesh.model import World

SUBZONE_LABEL = "topology.istio.io/subzone"  # node label; its value is the cluster's name


def endpoint_locality(world: World, cluster: str) -> str:
    """Where a cluster's endpoint of a weighted service is said to be: its own subzone."""
    spec = world.clusters[cluster]
    return f"{spec.region}/{spec.zones[0]}/{cluster}"


def pod_localities(world: World, cluster: str) -> list[str]:
    """The locality groups of a cluster's own pods: one per zone, in its subzone."""
    spec = world.clusters[cluster]
    return [f"{spec.region}/{zone}/{cluster}" for zone in spec.zones]


def distribute(world: World, service: str, here: str) -> list[dict[str, object]]:
    """The `distribute` of `service`'s DestinationRule in cluster `here`."""
    keys: dict[str, int] = {}
    for placement in world.placements[service]:
        weight = placement.weight or 0
        if weight == 0:
            continue
        if placement.cluster == here:
            localities = pod_localities(world, here)
            keys.update(zip(localities, _even(weight, len(localities)), strict=True))
        else:
            keys[endpoint_locality(world, placement.cluster)] = weight
    return [{"from": "*", "to": _at_least_one(keys)}]


def _even(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _at_least_one(keys: dict[str, int]) -> dict[str, int]:
    """Zones left at 0 by `_even` get 1 point each from the largest key (Istio takes 1-100)."""
    out = dict(sorted(keys.items()))
    for key in [k for k, w in out.items() if w == 0]:
        donor = max(out, key=lambda k: (out[k], k))
        out[donor] -= 1
        out[key] = 1
    return out
