"""GKE cluster: a hardened, private, VPC-native cluster, its node pools, and its Kubernetes provider.

Settings follow GKE's hardening guide (the safer-cluster module of terraform-google-kubernetes-engine);
each carries its reason. The cluster is protected twice: Pulumi `protect` blocks delete and replace
at preview, GKE `deletion_protection` blocks deletion at the API.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from mesh.infra.network import node_tag
from mesh.infra.pki import secret
from mesh.infra.stack_config import AuthorizedNetwork
from mesh.manifest import schema

# Node pool presets for `size:`; per zone, autoscaled.
SIZES: dict[str, list[schema.NodePool]] = {
    "small": [schema.NodePool(name="default", machine_type="e2-standard-4", min_nodes=1, max_nodes=3)],
    "medium": [schema.NodePool(name="default", machine_type="e2-standard-8", min_nodes=2, max_nodes=6)],
    "large": [schema.NodePool(name="default", machine_type="n2-standard-16", min_nodes=3, max_nodes=10)],
}

# Least privilege for nodes: write logs and metrics, pull images; nothing else.
NODE_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
)


@dataclass(frozen=True)
class ClusterArgs:
    spec: schema.Cluster
    network: pulumi.Input[str]
    subnetwork: pulumi.Input[str]
    release_channel: str
    authorized_networks: Sequence[AuthorizedNetwork]
    east_west_sources: pulumi.Input[Sequence[str]]  # who may reach the external east-west address
    network_project: str


def location_of(spec: schema.Cluster) -> str:
    """A single listed zone makes a zonal cluster; otherwise it is regional."""
    return spec.zones[0] if len(spec.zones) == 1 else spec.region


def node_pools(spec: schema.Cluster) -> list[schema.NodePool]:
    return spec.node_pools if spec.node_pools is not None else SIZES[spec.size or "small"]


class GkeCluster(pulumi.ComponentResource):
    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleet-mesh:gke:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        spec = args.spec
        assert spec.ip_ranges is not None  # checked by the program before any resource
        account = gcp.serviceaccount.Account(
            f"{name}-nodes", project=spec.project, account_id=f"gke-nodes-{name}"[:30],
            display_name=f"GKE nodes of {name}", opts=child)
        for role in NODE_ROLES:
            gcp.projects.IAMMember(f"{name}-nodes-{role.split('/')[-1]}", project=spec.project, role=role,
                                   member=account.email.apply(lambda email: f"serviceAccount:{email}"), opts=child)
        location = location_of(spec)
        self.cluster = gcp.container.Cluster(
            name, name=name, project=spec.project, location=location,
            node_locations=spec.zones if len(spec.zones) > 1 else None,
            network=args.network, subnetwork=args.subnetwork,
            # Node pools are managed separately: the default pool is created then removed (GKE needs one).
            remove_default_node_pool=True, initial_node_count=1,
            networking_mode="VPC_NATIVE",  # pod IPs routable in the VPC; required for private clusters
            ip_allocation_policy={"cluster_secondary_range_name": f"{name}-pods",
                                  "services_secondary_range_name": f"{name}-services"},
            private_cluster_config={
                "enable_private_nodes": True,  # nodes get no public IPs
                "enable_private_endpoint": False,  # reachable only from authorized networks below
                "master_ipv4_cidr_block": spec.ip_ranges.control_plane,
                "master_global_access_config": {"enabled": True},
            },
            master_authorized_networks_config={
                "cidr_blocks": [{"cidr_block": n.cidr_block, "display_name": n.display_name}
                                for n in args.authorized_networks],
                "gcp_public_cidrs_access_enabled": False,  # not every Google Cloud IP
            },
            workload_identity_config={"workload_pool": f"{spec.project}.svc.id.goog"},  # no node SA keys in pods
            release_channel={"channel": args.release_channel},  # GKE upgrades; no pinned versions
            enable_shielded_nodes=True,  # verifiable node identity and boot integrity
            datapath_provider="ADVANCED_DATAPATH",  # Dataplane V2; changing it re-creates the cluster
            binary_authorization={"evaluation_mode": "PROJECT_SINGLETON_POLICY_ENFORCE"},
            master_auth={"client_certificate_config": {"issue_client_certificate": False}},  # IAM only
            enable_legacy_abac=False,
            security_posture_config={"mode": "BASIC", "vulnerability_mode": "VULNERABILITY_BASIC"},
            deletion_protection=True,  # destructive: set false in its own change before deleting
            resource_labels={"managed-by": "fleet-mesh", "fleet-mesh-tier": spec.tier},
            opts=child.merge(pulumi.ResourceOptions(
                protect=True,
                # GKE mutates these after creation (default pool removed); diffs would be noise.
                ignore_changes=["nodePools", "initialNodeCount"],
            )),
        )
        for pool in node_pools(spec):
            self._node_pool(name, spec, location, pool, account.email, child)
        self._external_firewall(name, args)
        self.kubeconfig = secret(pulumi.Output.all(
            self.cluster.name, self.cluster.endpoint, self.cluster.master_auth.cluster_ca_certificate,
        ).apply(lambda values: kubeconfig(*values)))
        self.provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=self.kubeconfig,
            # Only a change of cluster identity replaces the provider (and everything on it);
            # rotated credentials or endpoints are updates.
            cluster_identifier=f"{spec.project}/{location}/{name}",
            enable_server_side_apply=True, opts=child)
        self.endpoint = self.cluster.endpoint
        self.register_outputs({"endpoint": self.endpoint, "kubeconfig": self.kubeconfig})

    def _node_pool(self, name: str, spec: schema.Cluster, location: str, pool: schema.NodePool,
                   service_account: pulumi.Output[str], child: pulumi.ResourceOptions) -> None:
        gcp.container.NodePool(
            f"{name}-{pool.name}", name=pool.name, project=spec.project, location=location, cluster=self.cluster.name,
            autoscaling={"min_node_count": pool.min_nodes, "max_node_count": pool.max_nodes},
            management={"auto_repair": True, "auto_upgrade": True},
            node_config={
                "machine_type": pool.machine_type,
                "spot": pool.spot,
                "image_type": "COS_CONTAINERD",  # minimal, hardened node image
                "service_account": service_account,
                "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],  # IAM decides, not scopes
                "workload_metadata_config": {"mode": "GKE_METADATA"},  # hide node credentials from pods
                "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
                "tags": [node_tag(name)],
                "labels": {"fleet-mesh/pool": pool.name},
            },
            opts=child)

    def _external_firewall(self, name: str, args: ClusterArgs) -> None:
        """Other networks reach this cluster's external east-west gateway only from known egress."""
        gcp.compute.Firewall(
            f"{name}-eastwest-external", project=args.network_project, network=args.network,
            direction="INGRESS", target_tags=[node_tag(name)], allows=[{"protocol": "tcp", "ports": ["15443"]}],
            source_ranges=args.east_west_sources, opts=pulumi.ResourceOptions(parent=self))


def kubeconfig(name: str, endpoint: str, ca_certificate: str) -> str:
    """Exec-based credentials (gke-gcloud-auth-plugin): short-lived tokens, nothing long-lived in state."""
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": f"https://{endpoint}",
                                                 "certificate-authority-data": ca_certificate}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "users": [{"name": name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "gke-gcloud-auth-plugin",
            "installHint": "Install gke-gcloud-auth-plugin (gcloud components install gke-gcloud-auth-plugin)",
            "provideClusterInfo": True,
        }}}],
    }, sort_keys=True)
