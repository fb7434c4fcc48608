"""Size before apply: what each istiod holds and what each proxy imports, from the compiled objects.

Istio users find out how big a proxy's config is when sidecars or istiod run out of memory
(istio/istio#41658, #7912, #52951). Everything here is counted from the compiled objects, so it is
known before any cluster exists; memory is *estimated* from published costs, not measured:

- Envoy: ~40 MB per sidecar at rest, plus ~118 KB per upstream cluster with Istio's default stats
  (~15 KB without) — envoyproxy/envoy#5201, istio/istio#7912; istio.io "Performance and scalability"
  (older releases: 40 MB per sidecar).
- istiod: 1.5 GB for 1,000 services and 2,000 sidecars with namespace isolation (istio.io
  "Performance and scalability", 1.24), scaled linearly per service it holds, on a 200 MB floor.

A workload's upstream clusters ≈ imported host × port × (1 + subsets); its endpoints = the remote
endpoints behind them (one per other cluster) plus its cluster's own pods, which the manifest does
not count.
"""

from __future__ import annotations

import fnmatch
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ENVOY_BASE_MB = 40.0
ENVOY_PER_CLUSTER_KB = 118.0
ISTIOD_FLOOR_MB = 200.0
ISTIOD_MB_PER_SERVICE = 1.5
# Flagged as an offender above these (a sidecar importing this much wants a narrower Sidecar).
PROXY_WARN_MB = 200.0
ISTIOD_WARN_MB = 2048.0


@dataclass(frozen=True)
class Workload:
    cluster: str
    namespace: str
    hosts: int  # imported mesh and external hosts
    envoy_clusters: int
    remote_endpoints: int

    @property
    def proxy_mb(self) -> float:
        return ENVOY_BASE_MB + self.envoy_clusters * ENVOY_PER_CLUSTER_KB / 1024


@dataclass(frozen=True)
class ClusterSize:
    name: str
    objects: Mapping[str, int]  # kind -> count istiod holds (Namespaces are Kubernetes', not istiod's)
    services: int  # ServiceEntries
    workloads: tuple[Workload, ...]

    @property
    def istiod_mb(self) -> float:
        return ISTIOD_FLOOR_MB + self.services * ISTIOD_MB_PER_SERVICE


def measure(compiled: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[ClusterSize]:
    return [_cluster(name, objects) for name, objects in sorted(compiled.items())]


def _cluster(name: str, objects: Sequence[Mapping[str, Any]]) -> ClusterSize:
    kinds = Counter(o["kind"] for o in objects if o["kind"] != "Namespace")
    entries = [o for o in objects if o["kind"] == "ServiceEntry"]
    subsets = {(o["metadata"]["namespace"], o["spec"]["host"]): len(o["spec"].get("subsets", []))
               for o in objects if o["kind"] == "DestinationRule"}
    remote = Counter((o["metadata"]["namespace"]) for o in objects if o["kind"] == "WorkloadEntry")
    workloads = tuple(_workload(name, sidecar, entries, subsets, remote)
                      for sidecar in objects if sidecar["kind"] == "Sidecar")
    return ClusterSize(name, dict(sorted(kinds.items())), len(entries), workloads)


def _workload(cluster: str, sidecar: Mapping[str, Any], entries: Sequence[Mapping[str, Any]],
              subsets: Mapping[tuple[str, str], int], remote: Mapping[str, int]) -> Workload:
    namespace = sidecar["metadata"]["namespace"]
    imported = [h for listener in sidecar["spec"].get("egress", []) for h in listener.get("hosts", [])]
    hosts = envoy_clusters = endpoints = 0
    for entry in entries:
        if not _imports(imported, namespace, entry):
            continue
        spec, entry_ns = entry["spec"], entry["metadata"]["namespace"]
        for host in spec["hosts"]:
            hosts += 1
            envoy_clusters += len(spec.get("ports", [])) * (1 + subsets.get((entry_ns, host), 0))
        # Inline endpoints where the service runs elsewhere only; WorkloadEntries beside local pods.
        endpoints += len(spec.get("endpoints", [])) or (remote.get(entry_ns, 0) if "workloadSelector" in spec else 0)
    return Workload(cluster, namespace, hosts, envoy_clusters, endpoints)


def _imports(imported: Sequence[str], namespace: str, entry: Mapping[str, Any]) -> bool:
    """Whether a Sidecar egress list (`ns/host`, `./host`, `*/host`) takes in this ServiceEntry."""
    entry_ns = entry["metadata"]["namespace"]
    for item in imported:
        scope, _, pattern = item.partition("/")
        if scope == "istio-system" and entry_ns != "istio-system":
            continue
        if scope not in ("*", entry_ns) and not (scope == "." and entry_ns == namespace):
            continue
        if any(fnmatch.fnmatchcase(host, pattern) or host == pattern for host in entry["spec"]["hosts"]):
            return True
    return False


def report(sizes: Sequence[ClusterSize], top: int = 5) -> str:
    """Per cluster what istiod holds; per workload what its proxy imports; the top offenders."""
    lines = [f"{'cluster':28} {'istio objects':>13} {'services':>9} {'istiod est.':>12}  "
             f"{'imports/workload (median, max)':>30}  {'proxy est. max':>14}"]
    for size in sizes:
        imports = [w.hosts for w in size.workloads] or [0]
        proxy = max((w.proxy_mb for w in size.workloads), default=ENVOY_BASE_MB)
        flag = "  ⚠" if size.istiod_mb > ISTIOD_WARN_MB or proxy > PROXY_WARN_MB else ""
        lines.append(f"{size.name:28} {sum(size.objects.values()):13,} {size.services:9,} "
                     f"{size.istiod_mb:9,.0f} MB  {statistics.median(imports):>20.0f}, {max(imports):>7}  "
                     f"{proxy:11,.0f} MB{flag}")
    workloads = sorted((w for s in sizes for w in s.workloads), key=lambda w: (-w.envoy_clusters, w.cluster,
                                                                               w.namespace))
    lines += ["", f"largest proxies (of {len(workloads)} workload namespaces):",
              f"  {'cluster/namespace':44} {'hosts':>6} {'envoy clusters':>15} {'remote endpoints':>17} {'est.':>8}"]
    for w in workloads[:top]:
        lines.append(f"  {w.cluster + '/' + w.namespace:44} {w.hosts:6} {w.envoy_clusters:15} "
                     f"{w.remote_endpoints:17} {w.proxy_mb:5.0f} MB")
    lines += ["", "estimates: Envoy ~40 MB + ~118 KB per upstream cluster (envoy#5201, istio#7912); istiod "
                  "~1.5 GB per 1,000 services (istio.io performance page); own pods not counted"]
    return "\n".join(lines)


def as_json(sizes: Sequence[ClusterSize]) -> dict[str, Any]:
    return {s.name: {"objects": dict(s.objects), "services": s.services, "istiodMb": round(s.istiod_mb),
                     "workloads": {w.namespace: {"hosts": w.hosts, "envoyClusters": w.envoy_clusters,
                                                 "remoteEndpoints": w.remote_endpoints,
                                                 "proxyMb": round(w.proxy_mb)} for w in s.workloads}}
            for s in sizes}
