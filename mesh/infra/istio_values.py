"""Helm values for Istio's `base`, `istiod` and `gateway` charts: pure functions of the control plane's args.

Everything here is what a real `pulumi up` hands to Helm, so tests render Istio's own charts with
exactly these values (tests/test_charts.py) and assert on what would land in the cluster. Keys are
those of the 1.31 charts' `values.yaml` (and the gateway's `values.schema.json`, which Helm enforces).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mesh.infra.control_plane import ControlPlaneArgs, IngressArgs

ISTIO_SYSTEM = "istio-system"
EAST_WEST_RELEASE = "istio-eastwestgateway"
INGRESS_RELEASE = "istio-ingressgateway"
EGRESS_RELEASE = "istio-egressgateway"  # mesh.compile.egress names its Service, selector and account after it
EGRESS_NAMESPACE = "istio-egress"
# The gateway chart's selector labels: `app: <release>`, `istio: <release without "istio-">`.
EAST_WEST_LABELS = {"app": EAST_WEST_RELEASE, "istio": "eastwestgateway"}
INGRESS_LABELS = {"app": INGRESS_RELEASE, "istio": "ingressgateway"}
EGRESS_LABELS = {"app": EGRESS_RELEASE, "istio": "egressgateway"}
NETWORK_LABEL = "topology.istio.io/network"

# GKE labels Spot nodes with this; the program also taints them `=true:NoSchedule`.
SPOT_LABEL = "cloud.google.com/gke-spot"

# The GKE metadata server, which serves Workload Identity tokens: pods dial 169.254.169.254:80; the
# node's gke-metadata-server daemon itself listens on 169.254.169.252:988 (GKE's network-policy guide
# lists both for Workload Identity egress), which some clients reach directly. Captured by the
# sidecar, these calls meet REGISTRY_ONLY egress and fail: every Google client library in a meshed
# pod would lose its credentials. Both are link-local and serve nothing else; no other egress opens.
METADATA_SERVER_RANGES = ("169.254.169.254/32", "169.254.169.252/32")


@dataclass(frozen=True)
class Sizing:
    """Per-size replicas and requests. Minimums are ≥ 2 so a node drain or zone loss never takes the
    last replica, and so the charts render their PodDisruptionBudgets (both need min > 1)."""

    istiod_min: int
    istiod_max: int
    istiod_cpu: str
    istiod_memory: str
    gateway_min: int
    gateway_max: int
    gateway_cpu: str
    gateway_memory: str


# istiod: Istio measures ~1 vCPU / 1.5 GB for 1000 services and 2000 sidecars with Sidecar scoping
# (performance-and-scalability); the chart's default request is 500m / 2Gi.
SIZES = {
    "small": Sizing(2, 3, "250m", "512Mi", 2, 4, "100m", "128Mi"),
    "medium": Sizing(2, 5, "500m", "1Gi", 2, 6, "250m", "256Mi"),
    "large": Sizing(3, 8, "1", "2Gi", 3, 10, "500m", "512Mi"),
}


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def newest(versions: tuple[str, ...]) -> str:
    return max(versions, key=version_key)


def revision_label(version: str) -> str:
    """Istio revision for a chart version: `1.31.1` -> `1-31-1` (a revision is a DNS label, no dots)."""
    return version.replace(".", "-")


def scheduling(selector: dict[str, str], zonal: bool) -> dict[str, Any]:
    """Keep control-plane pods off Spot nodes and spread them, so one preemption, node or zone never
    takes every replica. Values keys shared by the istiod and gateway charts."""
    spread_key = "kubernetes.io/hostname" if zonal else "topology.kubernetes.io/zone"

    def spread(key: str, when: str) -> dict[str, Any]:
        # pod-template-hash: count only the current ReplicaSet, so a rollout does not skew the spread.
        return {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": when,
                "labelSelector": {"matchLabels": dict(selector)}, "matchLabelKeys": ["pod-template-hash"]}

    constraints = [spread(spread_key, "DoNotSchedule")]
    if not zonal:
        constraints.append(spread("kubernetes.io/hostname", "ScheduleAnyway"))
    return {
        # Spot VMs are reclaimed with 30 s notice, often many at once: never the control plane or a
        # gateway. The taint already keeps them off; this holds even where a pool lacks the taint.
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": SPOT_LABEL, "operator": "NotIn", "values": ["true"]}]}]}}},
        "tolerations": [],  # in particular no toleration of the Spot taint
        "topologySpreadConstraints": constraints,
    }


def base_values(args: ControlPlaneArgs) -> dict[str, Any]:
    return {
        "global": {"enableReaderRBAC": False},  # no remote secrets read this cluster
        # The cluster-wide `istiod-default-validator` (objects without an `istio.io/rev` label, i.e.
        # every object we apply) is served by the revision namespaces use; "default" would point it at
        # a Service `istiod` that no revisioned install creates.
        "defaultRevision": revision_label(args.version),
    }


def istiod_values(args: ControlPlaneArgs, version: str) -> dict[str, Any]:
    revision = revision_label(version)
    size = SIZES[args.size]
    return {
        # Every name the chart renders carries the revision (Deployment, Service, webhooks, ConfigMaps,
        # RBAC), so two istiods coexist and each injects only namespaces labelled istio.io/rev=<rev>.
        "revision": revision,
        # No revision tags: a tag's webhook and Service have fixed names, so only one release may own
        # them and moving them between releases mid-upgrade would conflict. Namespaces name their
        # revision explicitly instead.
        "revisionTags": [],
        "global": {
            "meshID": args.mesh_id,  # the same everywhere
            "multiCluster": {"clusterName": args.cluster},  # distinct per cluster
            "network": args.network,  # distinct per cluster; endpoints of other networks go via gateways
            "enableReaderRBAC": False,  # no remote secrets read this cluster
            "defaultPodDisruptionBudget": {"enabled": True},
            "proxy": {
                # Workload Identity: the metadata server is never captured by the sidecar.
                "excludeIPRanges": ",".join(METADATA_SERVER_RANGES),
            },
        },
        "meshConfig": {
            "trustDomain": args.trust_domain,
            # Sidecars resolve imported public hosts in-mesh (Sidecar egress is the DNS view).
            "defaultConfig": {"proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"}},
        },
        "env": {
            # ServiceEntries get virtual IPs without the generator choosing them.
            "PILOT_ENABLE_IP_AUTOALLOCATE": "true",
            # WorkloadEntries carry the service's pod labels (to join its ServiceEntry); without this a
            # Kubernetes Service with the same selector would send cluster.local traffic to other
            # clusters' gateways, whose SNI (…svc.cluster.local) they do not serve: resets.
            "PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES": "false",
        },
        "autoscaleEnabled": True,
        "autoscaleMin": size.istiod_min,
        "autoscaleMax": size.istiod_max,
        "resources": {"requests": {"cpu": size.istiod_cpu, "memory": size.istiod_memory}},
        # One replica at a time on drains; a crash-looping pod must not block node upgrades.
        "pdb": {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"},
        **scheduling({"app": "istiod", "istio.io/rev": revision}, args.zonal),
    }


def _gateway_values(args: ControlPlaneArgs, selector: dict[str, str]) -> dict[str, Any]:
    size = SIZES[args.size]
    return {
        # Injected by the istiod that namespaces use, so gateway and sidecars run the same proxy.
        "revision": revision_label(args.version),
        # The component declares the load balancers itself: the chart's Service would expose every
        # port the chart knows (for a network gateway always 15021/15443/15012/15017).
        "service": {"type": "None"},
        "autoscaling": {"enabled": True, "minReplicas": size.gateway_min, "maxReplicas": size.gateway_max},
        "resources": {"requests": {"cpu": size.gateway_cpu, "memory": size.gateway_memory},
                      "limits": {"cpu": "2000m", "memory": "1024Mi"}},
        "podDisruptionBudget": {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"},
        **scheduling(selector, args.zonal),
    }


def east_west_values(args: ControlPlaneArgs) -> dict[str, Any]:
    return {
        **_gateway_values(args, EAST_WEST_LABELS),
        # Pod label topology.istio.io/network and ISTIO_META_REQUESTED_NETWORK_VIEW: this gateway
        # forwards only to this cluster's endpoints.
        "networkGateway": args.network,
        # The chart's Role lets the gateway read every Secret in its namespace — here istio-system,
        # which holds cacerts (the cluster's CA key). AUTO_PASSTHROUGH terminates no TLS: no secrets.
        "rbac": {"enabled": False},
    }


def ingress_values(args: ControlPlaneArgs, ingress: IngressArgs) -> dict[str, Any]:
    return {
        **_gateway_values(args, INGRESS_LABELS),
        # The identity compiled AuthorizationPolicies admit: <trustDomain>/ns/<namespace>/sa/<name>.
        "serviceAccount": {"create": True, "name": ingress.service_account},
        # rbac stays on: HTTPS servers read their certificates (credentialName) from this namespace,
        # which holds nothing else.
    }


def egress_values(args: ControlPlaneArgs) -> dict[str, Any]:
    return {
        **_gateway_values(args, EGRESS_LABELS),
        # Reached only from sidecars inside the cluster (over Istio mTLS), never from outside: a
        # ClusterIP Service on the two ports compiled egress routes use, plus the status port.
        "service": {"type": "ClusterIP", "ports": [
            {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"},
            {"name": "http2", "port": 80, "targetPort": 80, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 443, "protocol": "TCP"},
        ]},
        # Its servers are ISTIO_MUTUAL (the proxy's own certificate) and origination verifies with
        # the system roots: it reads no Secret, so the chart's Role for Secrets stays off.
        "rbac": {"enabled": False},
    }
