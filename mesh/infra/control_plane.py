"""Istio control plane: one self-sufficient istiod per cluster, and its east-west gateway.

Order matters and is explicit: `istio-system` labelled with the cluster's network, and the `cacerts`
Secret, exist before istiod starts (else it self-signs and cross-cluster mTLS fails); the `base`
chart (CRDs) precedes istiod; the east-west gateway follows istiod. Charts are pinned and come from
Istio's current repository. No remote secrets, no reader RBAC: this istiod reads only its own cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from mesh.infra.pki import ClusterCa

ISTIO_SYSTEM = "istio-system"
GATEWAY_RELEASE = "istio-eastwestgateway"
GATEWAY_LABELS = {"app": GATEWAY_RELEASE, "istio": "eastwestgateway"}


def revision_label(version: str) -> str:
    """Istio revision for a chart version: `1.31.1` -> `1-31-1` (a revision is a DNS label, no dots)."""
    return version.replace(".", "-")


@dataclass(frozen=True)
class ChartSource:
    """Where the Istio charts come from: a classic Helm repository (https://) or an OCI registry (oci://)."""

    repository: str

    def chart(self, name: str) -> str:
        # Helm takes an OCI chart as a full reference, never as a repository plus a name.
        return f"{self.repository.rstrip('/')}/{name}" if self.oci else name

    def repository_opts(self) -> k8s.helm.v3.RepositoryOptsArgs | None:
        return None if self.oci else k8s.helm.v3.RepositoryOptsArgs(repo=self.repository)

    @property
    def oci(self) -> bool:
        return self.repository.startswith("oci://")


@dataclass(frozen=True)
class IngressArgs:
    """The north-south ingress gateway of a cluster that runs `ingress: true` services."""

    namespace: str
    service_account: str
    address: pulumi.Input[str]  # reserved external address
    source_ranges: Sequence[str]  # never empty (checked before anything is registered)


@dataclass(frozen=True)
class ControlPlaneArgs:
    cluster: str
    network: str  # the cluster's Istio network (one per cluster)
    mesh_id: str
    trust_domain: str
    versions: tuple[str, ...]  # every istiod installed, one revision each (two during a canary upgrade)
    version: str  # the revision namespaces and gateways use; one of `versions`
    charts: ChartSource
    ca: ClusterCa
    size: str  # small | medium | large (nodePools-only clusters count as medium): replicas, requests
    zonal: bool  # a one-zone cluster spreads pods across nodes instead of zones
    external_address: pulumi.Input[str]
    east_west_sources: pulumi.Input[Sequence[str]]  # who may reach the external east-west LB; never empty
    internal_address: pulumi.Input[str] | None  # set where the VPC is shared with other clusters
    internal_sources: Sequence[str]  # node and pod ranges of the same-VPC peers
    ingress: IngressArgs | None


def istiod_values(args: ControlPlaneArgs) -> dict[str, Any]:
    return {
        "global": {
            "meshID": args.mesh_id,  # the same everywhere
            "multiCluster": {"clusterName": args.cluster},  # distinct per cluster
            "network": args.network,  # distinct per cluster; endpoints of other networks go via gateways
            "enableReaderRBAC": False,  # no remote secrets read this cluster
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
    }


class IstioControlPlane(pulumi.ComponentResource):
    def __init__(self, name: str, args: ControlPlaneArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleet-mesh:istio:ControlPlane", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        charts = args.charts
        namespace = k8s.core.v1.Namespace(
            f"{name}-istio-system",
            metadata={"name": ISTIO_SYSTEM, "labels": {"topology.istio.io/network": args.network}}, opts=child)
        cacerts = k8s.core.v1.Secret(
            f"{name}-cacerts", metadata={"name": "cacerts", "namespace": ISTIO_SYSTEM},
            string_data={"ca-cert.pem": args.ca.ca_cert, "ca-key.pem": args.ca.ca_key,
                         "cert-chain.pem": args.ca.cert_chain, "root-cert.pem": args.ca.root_cert},
            opts=child.merge(pulumi.ResourceOptions(depends_on=[namespace],
                                                    additional_secret_outputs=["stringData"])))
        base = k8s.helm.v3.Release(
            f"{name}-istio-base", name="istio-base", chart=charts.chart("base"), version=args.version,
            repository_opts=charts.repository_opts(), namespace=ISTIO_SYSTEM,
            values={"global": {"enableReaderRBAC": False}},
            opts=child.merge(pulumi.ResourceOptions(depends_on=[namespace])))
        self.istiod = k8s.helm.v3.Release(
            f"{name}-istiod", name="istiod", chart=charts.chart("istiod"), version=args.version,
            repository_opts=charts.repository_opts(),
            namespace=ISTIO_SYSTEM, values=istiod_values(args),
            timeout=600,  # wait until Ready: its webhook must answer before any Istio object is applied
            opts=child.merge(pulumi.ResourceOptions(depends_on=[base, cacerts])))
        gateway_values: dict[str, Any] = {
                "networkGateway": args.network,
                "service": {
                    "type": "LoadBalancer",
                    "loadBalancerIP": args.external_address,  # reserved: known before the LB exists
                    "loadBalancerSourceRanges": args.east_west_sources,
                },
            }
        self.gateway = k8s.helm.v3.Release(
            f"{name}-eastwest", name=GATEWAY_RELEASE, chart=charts.chart("gateway"), version=args.version,
            repository_opts=charts.repository_opts(), namespace=ISTIO_SYSTEM, values=gateway_values,
            opts=child.merge(pulumi.ResourceOptions(depends_on=[self.istiod])))
        if args.internal_address is not None:
            self._internal_service(name, args, child)
        # What Istio objects must wait for: istiod, whose validating webhook admits them. Not the
        # gateway: a slow load balancer must not hold back configuration.
        self.ready: list[pulumi.Resource] = [self.istiod]
        self.register_outputs({})

    def _internal_service(self, name: str, args: ControlPlaneArgs, child: pulumi.ResourceOptions) -> pulumi.Resource:
        """Peers on the same VPC dial an internal load balancer in front of the same gateway pods."""
        metadata: Any = {  # ObjectMetaArgsDict; plain dicts read closer to the YAML
                "name": f"{GATEWAY_RELEASE}-internal", "namespace": ISTIO_SYSTEM,
                "labels": {**GATEWAY_LABELS, "topology.istio.io/network": args.network},
                "annotations": {
                    "networking.gke.io/load-balancer-type": "Internal",
                    # callers in other regions of the VPC
                    "networking.gke.io/internal-load-balancer-allow-global-access": "true",
                },
            }
        spec: Any = {
            "type": "LoadBalancer", "loadBalancerIP": args.internal_address, "selector": GATEWAY_LABELS,
            "ports": [{"name": "tls", "port": 15443, "targetPort": 15443, "protocol": "TCP"}],
        }
        service: pulumi.Resource = k8s.core.v1.Service(
            f"{name}-eastwest-internal", metadata=metadata, spec=spec,
            opts=child.merge(pulumi.ResourceOptions(depends_on=[self.gateway])))
        return service
