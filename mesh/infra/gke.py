"""GKE cluster: a hardened, private, VPC-native cluster, its node pools, and its Kubernetes provider.

Settings follow GKE's hardening guide (the safer-cluster module of terraform-google-kubernetes-engine)
and were checked against current GKE documentation; each carries its reason. The cluster is
protected twice: Pulumi `protect` blocks delete and replace at preview, GKE `deletion_protection`
blocks deletion at the API.

The deployer reaches the control plane through GKE's DNS-based endpoint, authorized by IAM
(`container.clusters.connect`) from wherever it runs, so CI runners need no fixed egress range;
the IP endpoint stays, for the authorized networks only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from mesh.infra.network import node_tag
from mesh.infra.node_pools import node_pools
from mesh.infra.pki import secret
from mesh.infra.projects import ProjectApis
from mesh.infra.stack_config import AuthorizedNetwork
from mesh.manifest import schema

# Least privilege for nodes: GKE's own minimum for a node service account (logs, metrics, resource
# metadata; cloud.google.com/kubernetes-engine/docs/how-to/service-accounts) and image pulls from the
# cluster's project; image projects named in mesh:allowedImages get a reader grant of their own.
NODE_ROLES = (
    "roles/container.defaultNodeServiceAccount",
    "roles/artifactregistry.reader",
)
NODE_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]  # IAM decides, not scopes
# GKE labels Spot nodes with this key; the taint keeps everything off them unless it tolerates it.
SPOT_TAINT = {"key": "cloud.google.com/gke-spot", "value": "true", "effect": "NO_SCHEDULE"}


@dataclass(frozen=True)
class ClusterArgs:
    spec: schema.Cluster
    network: str  # projects/<host>/global/networks/<name>
    subnetwork: str  # projects/<host>/regions/<region>/subnetworks/<name>
    release_channel: str
    authorized_networks: Sequence[AuthorizedNetwork]
    apis: ProjectApis
    # What must exist before the cluster: its subnet and Shared VPC grants, its project's
    # attachment, the Binary Authorization policy it enforces.
    after: Sequence[pulumi.Resource]
    decommissioned: bool = False  # deletion protection lifted, so the next change can delete it
    image_projects: Sequence[str] = ()  # where mesh:allowedImages live: the nodes need to read them
    # a cluster whose stack (not this one) declares part of this cluster's Shared VPC setup
    shared_vpc_owner: str | None = None
    policy_owner: str | None = None  # the cluster whose stack declares the project's Binary Authorization policy


def location_of(spec: schema.Cluster) -> str:
    """A single listed zone makes a zonal cluster; otherwise it is regional."""
    return spec.zones[0] if len(spec.zones) == 1 else spec.region


class GkeCluster(pulumi.ComponentResource):
    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleet-mesh:gke:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        spec, apis = args.spec, args.apis
        self._apis = apis
        assert spec.ip_ranges is not None  # checked by the program before any resource
        account = gcp.serviceaccount.Account(
            f"{name}-nodes", project=spec.project, account_id=f"gke-nodes-{name}"[:30],
            display_name=f"GKE nodes of {name}",
            opts=child.merge(pulumi.ResourceOptions(
                depends_on=apis.needed_by("gcp:serviceaccount/account:Account", spec.project))))
        member = account.email.apply(lambda email: f"serviceAccount:{email}")
        grants = [
            gcp.projects.IAMMember(
                f"{name}-nodes-{role.split('/')[-1]}", project=spec.project, role=role, member=member,
                opts=child.merge(pulumi.ResourceOptions(
                    depends_on=apis.needed_by("gcp:projects/iAMMember:IAMMember", spec.project))))
            for role in NODE_ROLES
        ] + [
            gcp.projects.IAMMember(
                f"{name}-nodes-images-{project}", project=project, role="roles/artifactregistry.reader",
                member=member, opts=child.merge(pulumi.ResourceOptions(
                    depends_on=apis.needed_by("gcp:projects/iAMMember:IAMMember", project))))
            for project in args.image_projects if project != spec.project
        ]
        location = location_of(spec)
        secrets_key, key_grant = self._secrets_key(name, spec, child)
        self.cluster = gcp.container.Cluster(
            name, name=name, project=spec.project, location=location,
            node_locations=spec.zones if len(spec.zones) > 1 else None,
            network=args.network, subnetwork=args.subnetwork,
            # Node pools are managed separately: GKE needs a default pool at creation, removed right
            # after. It still runs for minutes, so it gets the least-privilege node identity too.
            remove_default_node_pool=True, initial_node_count=1,
            node_config={"service_account": account.email, "oauth_scopes": NODE_SCOPES,
                         "workload_metadata_config": {"mode": "GKE_METADATA"},
                         "shielded_instance_config": {"enable_secure_boot": True,
                                                      "enable_integrity_monitoring": True}},
            # Backend-service load balancers (the gateways' Services) need GKE's load-balancing add-on.
            addons_config={"http_load_balancing": {"disabled": False}},
            networking_mode="VPC_NATIVE",  # pod IPs routable in the VPC; required for private clusters
            ip_allocation_policy={"cluster_secondary_range_name": f"{name}-pods",
                                  "services_secondary_range_name": f"{name}-services"},
            private_cluster_config={
                "enable_private_nodes": True,  # nodes get no public IPs
                # No public IP endpoint at all: the deployer uses the DNS endpoint; people on the
                # VPC (bastions) use the private one, and only from the authorized networks below.
                "enable_private_endpoint": True,
                "master_ipv4_cidr_block": spec.ip_ranges.control_plane,
                "master_global_access_config": {"enabled": True},
            },
            control_plane_endpoints_config={
                # IAM-authorized DNS name: the deployer reaches the API from anywhere with
                # container.clusters.connect, without opening the IP endpoint to CI's changing egress.
                "dns_endpoint_config": {"allow_external_traffic": True},
                "ip_endpoints_config": {"enabled": True},
            },
            master_authorized_networks_config={
                "cidr_blocks": [{"cidr_block": n.cidr_block, "display_name": n.display_name}
                                for n in args.authorized_networks],
                "gcp_public_cidrs_access_enabled": False,  # not every Google Cloud IP
                # With global access the private endpoint answers the whole VPC; enforce the list there too.
                "private_endpoint_enforcement_enabled": True,
            },
            # Kubernetes Secrets (among them cacerts, this cluster's CA key) encrypted in etcd with a
            # key of the project's own, not only Google's default encryption at rest.
            database_encryption={"state": "ENCRYPTED", "key_name": secrets_key.id},
            workload_identity_config={"workload_pool": f"{spec.project}.svc.id.goog"},  # no node SA keys in pods
            release_channel={"channel": args.release_channel},  # GKE upgrades; no pinned versions
            enable_shielded_nodes=True,  # verifiable node identity and boot integrity
            datapath_provider="ADVANCED_DATAPATH",  # Dataplane V2; changing it re-creates the cluster
            # Enforce the project's singleton policy (declared by the program: Istio's, Google's and
            # the fleet's own images; audit-only until the fleet lists its registries).
            binary_authorization={"evaluation_mode": "PROJECT_SINGLETON_POLICY_ENFORCE"},
            master_auth={"client_certificate_config": {"issue_client_certificate": False}},  # IAM only
            enable_legacy_abac=False,
            # Workload configuration auditing stays; workload vulnerability scanning is off because
            # both its tiers were withdrawn (standard 2025-07-31, advanced 2026-06-16; GKE "posture
            # management deprecations"): image scanning belongs to Artifact Analysis.
            security_posture_config={"mode": "BASIC", "vulnerability_mode": "VULNERABILITY_DISABLED"},
            # Destructive to lift: only through mesh:decommission, in its own change before the deletion.
            deletion_protection=not args.decommissioned,
            resource_labels={"managed-by": "fleet-mesh", "fleet-mesh-tier": spec.tier,
                             **({"fleet-mesh-decommission": "true"} if args.decommissioned else {}),
                             # the policy pack then leaves those pieces to that cluster's stack
                             **({"fleet-mesh-shared-vpc-owner": args.shared_vpc_owner}
                                if args.shared_vpc_owner else {}),
                             **({"fleet-mesh-policy-owner": args.policy_owner} if args.policy_owner else {})},
            opts=child.merge(pulumi.ResourceOptions(
                protect=not args.decommissioned,
                # Binary Authorization evaluates this cluster's pods: its API must be on first.
                depends_on=[*apis.needed_by("gcp:container/cluster:Cluster", spec.project),
                            *apis.needed_by("gcp:binaryauthorization/policy:Policy", spec.project),
                            *args.after, *grants, key_grant],
                # GKE mutates these after creation (the default pool is removed); diffs would be noise.
                ignore_changes=["nodePools", "initialNodeCount", "nodeConfig"],
            )),
        )
        self.node_pools = [self._node_pool(name, spec, location, pool, account.email, child)
                           for pool in node_pools(spec)]
        self.endpoint = self.cluster.endpoint
        self.dns_endpoint = self.cluster.control_plane_endpoints_config.apply(
            lambda config: config.dns_endpoint_config.endpoint if config and config.dns_endpoint_config else "")
        self.kubeconfig = secret(pulumi.Output.all(self.cluster.name, self.dns_endpoint).apply(
            lambda values: kubeconfig(*values)))
        self.provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=self.kubeconfig,
            # Only a change of cluster identity replaces the provider (and everything on it);
            # rotated credentials or endpoints are updates.
            cluster_identifier=f"{spec.project}/{location}/{name}",
            enable_server_side_apply=True,
            # Everything installed through this provider waits for nodes: the default pool is gone
            # by the time the cluster is ready, and a Helm release waiting on a node-less cluster
            # times out.
            opts=child.merge(pulumi.ResourceOptions(depends_on=self.node_pools)))
        self.register_outputs({"endpoint": self.endpoint, "dnsEndpoint": self.dns_endpoint,
                               "kubeconfig": self.kubeconfig})

    def _secrets_key(self, name: str, spec: schema.Cluster,
                     child: pulumi.ResourceOptions) -> tuple[gcp.kms.CryptoKey, pulumi.Resource]:
        """A Cloud KMS key for application-layer secrets encryption, in the cluster's region (GKE
        requires the key's location to match the cluster's), usable only by GKE's service agent."""
        kms = pulumi.ResourceOptions(depends_on=self._apis.needed_by("gcp:kms/keyRing:KeyRing", spec.project))
        ring = gcp.kms.KeyRing(f"{name}-secrets", name=f"{name}-secrets", project=spec.project,
                               location=spec.region, opts=child.merge(kms))
        key = gcp.kms.CryptoKey(
            f"{name}-secrets", name="gke-secrets", key_ring=ring.id, rotation_period="7776000s",  # 90 days
            # Destroying the key makes every Secret in the cluster unreadable: protected.
            opts=child.merge(kms).merge(pulumi.ResourceOptions(protect=True)))
        grant = gcp.kms.CryptoKeyIAMMember(
            f"{name}-secrets-gke", crypto_key_id=key.id, role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
            member=self._apis.gke_agent(spec.project), opts=child.merge(kms))
        return key, grant

    def _node_pool(self, name: str, spec: schema.Cluster, location: str, pool: schema.NodePool,
                   service_account: pulumi.Output[str], child: pulumi.ResourceOptions) -> gcp.container.NodePool:
        return gcp.container.NodePool(
            f"{name}-{pool.name}", name=pool.name, project=spec.project, location=location, cluster=self.cluster.name,
            # Per zone; GKE needs a count at creation, the autoscaler owns it afterwards.
            initial_node_count=max(pool.min_nodes, 1),
            autoscaling={"min_node_count": pool.min_nodes, "max_node_count": pool.max_nodes},
            management={"auto_repair": True, "auto_upgrade": True},
            node_config=cast(Any, {  # a dict reads like the API; the SDK's TypedDict rejects the taint list
                "machine_type": pool.machine_type,
                "spot": pool.spot,
                # Preemptible capacity only for what asks for it: istiod and gateways never land here.
                "taints": [SPOT_TAINT] if pool.spot else [],
                "image_type": "COS_CONTAINERD",  # minimal, hardened node image
                "service_account": service_account,
                "oauth_scopes": NODE_SCOPES,
                "workload_metadata_config": {"mode": "GKE_METADATA"},  # hide node credentials from pods
                "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
                "tags": [node_tag(name)],
                # Every cluster its own locality (region/zone/<cluster>): what weighted services'
                # locality weights (DestinationRule distribute) key on, for local pods too.
                "labels": {"fleet-mesh/pool": pool.name, "topology.istio.io/subzone": spec.name},
            }),
            opts=child.merge(pulumi.ResourceOptions(
                depends_on=[self.cluster, *self._apis.needed_by("gcp:container/nodePool:NodePool", spec.project)],
                ignore_changes=["initialNodeCount"],  # the autoscaler's business after creation
            )))


def binary_authorization_policy(project: str, allowed_images: Sequence[str], apis: ProjectApis,
                                opts: pulumi.ResourceOptions | None = None) -> gcp.binaryauthorization.Policy:
    """The project's singleton policy that its clusters enforce.

    Google's system images (GKE's own) are allowed by the global evaluation mode, Istio's by pattern;
    everything else must match `mesh:allowedImages`. While that list is empty the default rule only
    audits: enforcing it would block every team's workloads on the first deploy.
    """
    enforcement = "ENFORCED_BLOCK_AND_AUDIT_LOG" if allowed_images else "DRYRUN_AUDIT_LOG_ONLY"
    # Exactly Istio's two images (a trailing * does not match "/", and here not other istio/ images).
    patterns = [f"{registry}/istio/{image}*" for registry in ("docker.io", "index.docker.io")
                for image in ("pilot", "proxyv2")] + list(allowed_images)
    return gcp.binaryauthorization.Policy(
        f"{project}-binary-authorization", project=project,
        global_policy_evaluation_mode="ENABLE",
        admission_whitelist_patterns=[{"name_pattern": p} for p in patterns],
        default_admission_rule={"evaluation_mode": "ALWAYS_DENY", "enforcement_mode": enforcement},
        opts=pulumi.ResourceOptions.merge(opts or pulumi.ResourceOptions(), pulumi.ResourceOptions(
            depends_on=apis.needed_by("gcp:binaryauthorization/policy:Policy", project))))


def kubeconfig(name: str, dns_endpoint: str) -> str:
    """Exec-based credentials (gke-gcloud-auth-plugin) for the DNS endpoint: short-lived IAM tokens,
    nothing long-lived in state, and no cluster CA (the DNS endpoint serves a publicly trusted one)."""
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": f"https://{dns_endpoint}"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "users": [{"name": name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "gke-gcloud-auth-plugin",
            "installHint": "Install gke-gcloud-auth-plugin (gcloud components install gke-gcloud-auth-plugin)",
            "provideClusterInfo": True,
        }}}],
    }, sort_keys=True)
