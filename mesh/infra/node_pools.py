"""Node pools of a cluster: the `size` presets, and how many nodes a cluster can grow to (pure)."""

from __future__ import annotations

from mesh.manifest import schema

# Presets for `size:`; counts are per zone, autoscaled.
SIZES: dict[str, list[schema.NodePool]] = {
    "small": [schema.NodePool(name="default", machine_type="e2-standard-4", min_nodes=1, max_nodes=3)],
    "medium": [schema.NodePool(name="default", machine_type="e2-standard-8", min_nodes=2, max_nodes=6)],
    "large": [schema.NodePool(name="default", machine_type="n2-standard-16", min_nodes=3, max_nodes=10)],
}


def node_pools(spec: schema.Cluster) -> list[schema.NodePool]:
    return spec.node_pools if spec.node_pools is not None else SIZES[spec.size or "small"]


def zone_count(spec: schema.Cluster) -> int:
    """GKE's default for a regional cluster without node locations is three zones."""
    return len(spec.zones) or 3


def max_nodes(spec: schema.Cluster) -> int:
    """The most VMs the cluster's autoscaler may run (per-zone maxima times zones)."""
    return sum(pool.max_nodes for pool in node_pools(spec)) * zone_count(spec)
