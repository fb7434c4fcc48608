"""Istio control plane: one self-sufficient istiod per cluster (one per revision during a canary
upgrade), its east-west gateway, and where the cluster serves `ingress: true` services, an ingress
gateway.

Order matters and is explicit: `istio-system` labelled with the cluster's network, and the `cacerts`
Secret, exist before istiod starts (else it self-signs and cross-cluster mTLS fails); the `base`
chart (CRDs) precedes every istiod; gateways follow the istiod that injects them. Charts are pinned
and come from Istio's current repository. No remote secrets, no reader RBAC: each istiod reads only
its own cluster. Chart values are built in `mesh.infra.istio_values` (pure, rendered by the tests).

Revisions: every istiod is installed as revision `<major>-<minor>-<patch>` (chart value `revision`,
release `istiod-<rev>`), so two can run side by side; namespaces, gateways and the default
validating webhook follow `version`. A canary upgrade is: add the new version to `versions`, move
`version` to it (namespaces and gateways switch; restart workloads), then drop the old one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from mesh.infra.istio_values import (
    EAST_WEST_LABELS,
    EAST_WEST_RELEASE,
    EGRESS_NAMESPACE,
    EGRESS_RELEASE,
    INGRESS_LABELS,
    INGRESS_RELEASE,
    ISTIO_SYSTEM,
    NETWORK_LABEL,
    base_values,
    east_west_values,
    egress_values,
    ingress_values,
    istiod_values,
    newest,
    revision_label,
)
from mesh.infra.pki import ClusterCa

__all__ = ["ISTIO_SYSTEM", "ChartSource", "ControlPlaneArgs", "IngressArgs", "IstioControlPlane", "revision_label"]

# East-west load balancers expose 15443 only: callers' sidecars reach AUTO_PASSTHROUGH there. The
# chart's other network-gateway ports serve multicluster models this design does not use: 15012
# (istiod xDS/CA) and 15017 (istiod webhooks) let *remote* clusters use this istiod, and no remote
# cluster or remote istiod exists here; 15021 (status) is for the LB's health check, and GKE's
# passthrough LBs check nodes, not that port. Publishing them would put this cluster's CA and xDS
# on an internet-facing address for no caller.
EAST_WEST_PORTS = (("tls", 15443),)
# The compiled Istio Gateway of the ingress listens on 443 (HTTPS); nothing else is published.
INGRESS_PORTS = (("https", 443),)

# GKE: build a backend-service-based external passthrough NLB (regional backend service, health
# checks per node) rather than the legacy target-pool one; supported from GKE 1.25.5
# (kubernetes-engine/docs/how-to/external-svc-lb-rbs).
EXTERNAL_LB_ANNOTATIONS = {"cloud.google.com/l4-rbs": "enabled"}
INTERNAL_LB_ANNOTATIONS = {
    "networking.gke.io/load-balancer-type": "Internal",
    # same-VPC peers in other regions (the core VPC spans us-east1 and us-west1)
    "networking.gke.io/internal-load-balancer-allow-global-access": "true",
}


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
    # who may reach the external east-west LB (never empty); None: nobody outside the VPC calls this
    # cluster, so it gets no external load balancer at all (its address stays reserved)
    east_west_sources: pulumi.Input[Sequence[str]] | None
    internal_address: pulumi.Input[str] | None  # set where the VPC is shared with other clusters
    internal_sources: Sequence[str]  # node and pod ranges of the same-VPC peers
    ingress: IngressArgs | None
    egress: bool = False  # an egress gateway: a caller of an `egressGateway` external runs here


class IstioControlPlane(pulumi.ComponentResource):
    def __init__(self, name: str, args: ControlPlaneArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleet-mesh:istio:ControlPlane", name, None, opts)
        if args.version not in args.versions:
            raise ValueError(f"{name}: version {args.version} is not among the installed versions {args.versions}")
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self.revision = revision_label(args.version)
        namespace = k8s.core.v1.Namespace(
            f"{name}-istio-system",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=ISTIO_SYSTEM, labels={NETWORK_LABEL: args.network}),
            opts=self._child)
        self.namespaces: dict[str, pulumi.Resource] = {ISTIO_SYSTEM: namespace}
        cacerts = k8s.core.v1.Secret(
            f"{name}-cacerts", metadata=k8s.meta.v1.ObjectMetaArgs(name="cacerts", namespace=ISTIO_SYSTEM),
            string_data={"ca-cert.pem": args.ca.ca_cert, "ca-key.pem": args.ca.ca_key,
                         "cert-chain.pem": args.ca.cert_chain, "root-cert.pem": args.ca.root_cert},
            opts=self._after([namespace]).merge(pulumi.ResourceOptions(additional_secret_outputs=["stringData"])))
        # CRDs are shared by every revision and only ever move forward (Istio keeps them backward
        # compatible): the newest installed version's.
        base = self._release("istio-base", "istio-base", "base", newest(args.versions), ISTIO_SYSTEM,
                             base_values(args), [namespace])  # CRDs need no CA: only istiod waits for cacerts
        self.istiods: dict[str, k8s.helm.v3.Release] = {}
        for version in dict.fromkeys(args.versions):
            revision = revision_label(version)
            self.istiods[revision] = self._release(
                f"istiod-{revision}", f"istiod-{revision}", "istiod", version, ISTIO_SYSTEM,
                istiod_values(args, version), [base, cacerts],
                timeout=600)  # wait until Ready: its webhooks must answer before any pod or Istio object
        serving = self.istiods[self.revision]
        self.gateway = self._release("eastwest", EAST_WEST_RELEASE, "gateway", args.version, ISTIO_SYSTEM,
                                     east_west_values(args), [serving])
        # Not named like the chart's former Service `istio-eastwestgateway`: on clusters installed
        # before, Helm deletes that one (GKE then frees the reserved address) while this is created;
        # one name would collide with the terminating object.
        self.services: list[k8s.core.v1.Service] = []
        if args.east_west_sources is not None:
            self.services.append(self._service(
                "eastwest-external", f"{EAST_WEST_RELEASE}-external", ISTIO_SYSTEM, EAST_WEST_LABELS,
                EAST_WEST_PORTS, EXTERNAL_LB_ANNOTATIONS, args.external_address, args.east_west_sources,
                self.gateway, network=args.network))
        if args.internal_address is not None:
            # Peers on the same VPC dial an internal LB in front of the same pods; only they may.
            self.services.append(self._service(
                "eastwest-internal", f"{EAST_WEST_RELEASE}-internal", ISTIO_SYSTEM, EAST_WEST_LABELS,
                EAST_WEST_PORTS, INTERNAL_LB_ANNOTATIONS, args.internal_address, args.internal_sources,
                self.gateway, network=args.network))
        self.ingress: k8s.helm.v3.Release | None = None
        if args.ingress is not None:
            self.ingress = self._ingress(args.ingress, serving)
        self.egress: k8s.helm.v3.Release | None = self._egress(serving) if args.egress else None
        # What Istio objects must wait for: every istiod (each validates objects of its revision; the
        # serving one also the rest). Not the gateways: a slow load balancer must not hold back config.
        self.ready: list[pulumi.Resource] = list(self.istiods.values())
        self.register_outputs({"revision": self.revision, "revisions": list(self.istiods)})

    def _after(self, resources: Sequence[pulumi.Resource]) -> pulumi.ResourceOptions:
        return self._child.merge(pulumi.ResourceOptions(depends_on=list(resources)))

    def _release(self, suffix: str, release: str, chart: str, version: str, namespace: str,
                 values: Mapping[str, object], after: Sequence[pulumi.Resource],
                 timeout: int | None = None) -> k8s.helm.v3.Release:
        charts = self._args.charts
        return k8s.helm.v3.Release(
            f"{self._name}-{suffix}", name=release, chart=charts.chart(chart), version=version,
            repository_opts=charts.repository_opts(), namespace=namespace, values=dict(values),
            timeout=timeout, opts=self._after(after))

    def _service(self, suffix: str, service: str, namespace: str, selector: Mapping[str, str],
                 ports: Sequence[tuple[str, int]], annotations: Mapping[str, str],
                 address: pulumi.Input[str], sources: pulumi.Input[Sequence[str]], after: pulumi.Resource,
                 network: str | None = None) -> k8s.core.v1.Service:
        labels = {**selector, **({NETWORK_LABEL: network} if network else {})}
        return k8s.core.v1.Service(
            f"{self._name}-{suffix}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=service, namespace=namespace, labels=labels,
                                                annotations=dict(annotations)),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="LoadBalancer",
                load_balancer_ip=address,  # reserved: known before the LB exists, never changes
                # GKE turns these into the LB's VPC firewall rule: only the listed callers get in.
                load_balancer_source_ranges=sources,
                selector=dict(selector),
                ports=[k8s.core.v1.ServicePortArgs(name=port_name, port=port, target_port=port, protocol="TCP")
                       for port_name, port in ports]),
            opts=self._after([after]))

    def _egress(self, serving: pulumi.Resource) -> k8s.helm.v3.Release:
        namespace = k8s.core.v1.Namespace(
            f"{self._name}-{EGRESS_NAMESPACE}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=EGRESS_NAMESPACE, labels={"istio.io/rev": self.revision}),
            opts=self._child)
        self.namespaces[EGRESS_NAMESPACE] = namespace
        return self._release("egress", EGRESS_RELEASE, "gateway", self._args.version, EGRESS_NAMESPACE,
                             egress_values(self._args), [namespace, serving])

    def _ingress(self, ingress: IngressArgs, serving: pulumi.Resource) -> k8s.helm.v3.Release:
        namespace = k8s.core.v1.Namespace(
            f"{self._name}-{ingress.namespace}",
            # injected by the serving revision, like every compiled namespace
            metadata=k8s.meta.v1.ObjectMetaArgs(name=ingress.namespace, labels={"istio.io/rev": self.revision}),
            opts=self._child)
        self.namespaces[ingress.namespace] = namespace
        release = self._release("ingress", INGRESS_RELEASE, "gateway", self._args.version, ingress.namespace,
                                ingress_values(self._args, ingress), [namespace, serving])
        self.services.append(self._service(
            "ingress-external", INGRESS_RELEASE, ingress.namespace, INGRESS_LABELS, INGRESS_PORTS,
            EXTERNAL_LB_ANNOTATIONS, ingress.address, ingress.source_ranges, release))
        return release
