"""Shared VPC: a cluster in one project on a network of another makes that network's project a host.

GKE allows a cluster on another project's subnet only when (cloud.google.com/kubernetes-engine/docs/
how-to/cluster-shared-vpc): the network's project is a Shared VPC host; the cluster's project is
attached to it as a service project; the service project's GKE service agent has
`roles/compute.networkUser` on the subnet and `roles/container.hostServiceAgentUser` on the host; its
Google APIs service agent (which runs the node pools' instance groups) has `roles/compute.networkUser`
on the subnet; and, for GKE to create the firewall rules its load balancers and health checks need
in the host's network, the GKE agent holds those firewall permissions on the host.

Who declares what when a fleet runs as several stacks (pure, `plan_shared_vpc`): a host project is
declared by the stack managing the first cluster (by name) that uses it from another project, with
its firewall role; an attachment (host, service project), with the host-level grants, by the stack
managing the first cluster of that service project on that host; subnet grants with the subnet, by
the cluster's own stack. A stack whose cluster relies on another stack's attachment is applied after
it (README, "Running a large fleet as several stacks").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from mesh.infra.projects import ProjectApis
from mesh.manifest import schema

# The narrowest grant that lets GKE manage its load balancers' firewall rules in the host network:
# the permissions GKE's Shared VPC guide lists, instead of the much wider roles/compute.securityAdmin
# (which also manages SSL certificates, security policies and every firewall policy of the host).
FIREWALL_ROLE_ID = "fleetMeshGkeFirewalls"
FIREWALL_PERMISSIONS = (
    "compute.firewalls.create",
    "compute.firewalls.delete",
    "compute.firewalls.get",
    "compute.firewalls.list",
    "compute.firewalls.update",
    "compute.networks.updatePolicy",
)


@dataclass(frozen=True)
class SharedVpcPlan:
    hosts: tuple[str, ...]  # host projects this stack declares
    attachments: tuple[tuple[str, str], ...]  # (host, service project) pairs this stack declares


def host_of(fleet: schema.Fleet, cluster: schema.Cluster) -> str | None:
    """The Shared VPC host project a cluster needs, or None when its network is in its own project."""
    project = fleet.networks[cluster.network].project
    return None if project == cluster.project else project


def owners(fleet: schema.Fleet, cluster: schema.Cluster) -> tuple[str, str] | None:
    """(host owner, attachment owner): the clusters whose stacks declare this cluster's Shared VPC
    host (the first cluster by name using that host) and its project's attachment with the
    host-level grants (the first of its project on that host). None when it needs no Shared VPC."""
    host = host_of(fleet, cluster)
    if host is None:
        return None
    on_host = [c for c in fleet.clusters if host_of(fleet, c) == host]
    return (min(c.name for c in on_host), min(c.name for c in on_host if c.project == cluster.project))


def plan_shared_vpc(fleet: schema.Fleet, managed: Iterable[str]) -> SharedVpcPlan:
    managed = set(managed)
    hosts, attachments = set(), set()
    for cluster in fleet.clusters:
        found = owners(fleet, cluster)
        host = host_of(fleet, cluster)
        if found is None or host is None:
            continue
        host_owner, attachment_owner = found
        if host_owner in managed:
            hosts.add(host)
        if attachment_owner in managed:
            attachments.add((host, cluster.project))
    return SharedVpcPlan(hosts=tuple(sorted(hosts)), attachments=tuple(sorted(attachments)))


class SharedVpc(pulumi.ComponentResource):
    """The host projects and service-project attachments of this stack, with GKE's host-level grants."""

    def __init__(self, plan: SharedVpcPlan, apis: ProjectApis, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleet-mesh:network:SharedVpc", "shared-vpc", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        hosts: dict[str, list[pulumi.Resource]] = {}
        for host in plan.hosts:
            hosts[host] = self._host(host, apis, child)
        # (host, service project) -> what a cluster of that project on that host waits for
        self.ready: dict[tuple[str, str], list[pulumi.Resource]] = {}
        for host, service in plan.attachments:
            self.ready[(host, service)] = self._attachment(host, service, apis, hosts.get(host, []), child)
        self.register_outputs({})

    @staticmethod
    def _host(host: str, apis: ProjectApis, child: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        depends = apis.needed_by("gcp:compute/sharedVPCHostProject:SharedVPCHostProject", host)
        enabled = gcp.compute.SharedVPCHostProject(
            f"{host}-shared-vpc-host", project=host,
            # Removing it from the stack must not switch Shared VPC off under every service project.
            deletion_policy="ABANDON", opts=child.merge(pulumi.ResourceOptions(depends_on=depends)))
        role = gcp.projects.IAMCustomRole(
            f"{host}-gke-firewalls", project=host, role_id=FIREWALL_ROLE_ID,
            title="fleet-mesh: GKE manages load-balancer firewall rules",
            description="Lets service projects' GKE agents create the firewall rules of their load balancers.",
            permissions=list(FIREWALL_PERMISSIONS),
            opts=child.merge(pulumi.ResourceOptions(
                depends_on=apis.needed_by("gcp:projects/iAMCustomRole:IAMCustomRole", host))))
        return [enabled, role]

    @staticmethod
    def _attachment(host: str, service: str, apis: ProjectApis, host_resources: list[pulumi.Resource],
                    child: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        member_type = "gcp:projects/iAMMember:IAMMember"
        attached = gcp.compute.SharedVPCServiceProject(
            f"{service}-on-{host}", host_project=host, service_project=service,
            deletion_policy="ABANDON",  # detaching would cut every cluster of the project off its network
            opts=child.merge(pulumi.ResourceOptions(depends_on=[
                *host_resources, *apis.needed_by("gcp:compute/sharedVPCServiceProject:SharedVPCServiceProject",
                                                 service)])))
        # The GKE agent exists once the Kubernetes Engine API is enabled in the service project.
        agent_ready = [*apis.needed_by("gcp:container/cluster:Cluster", service), *apis.needed_by(member_type, host)]
        grants: list[pulumi.Resource] = [attached]
        for suffix, role in (("host-agent", "roles/container.hostServiceAgentUser"),
                             ("firewalls", f"projects/{host}/roles/{FIREWALL_ROLE_ID}")):
            grants.append(gcp.projects.IAMMember(
                f"{service}-gke-{suffix}-on-{host}", project=host, role=role, member=apis.gke_agent(service),
                opts=child.merge(pulumi.ResourceOptions(depends_on=[*agent_ready, *host_resources]))))
        return grants


def subnet_grants(cluster: schema.Cluster, host: str, subnet: gcp.compute.Subnetwork, apis: ProjectApis,
                  parent: pulumi.Resource) -> list[pulumi.Resource]:
    """The cluster project's two service agents may use the cluster's subnet, and only that subnet."""
    agents: Mapping[str, pulumi.Output[str]] = {
        "gke": apis.gke_agent(cluster.project), "cloudservices": apis.cloud_services_agent(cluster.project)}
    # Each agent exists once its API is on in the service project: GKE's with Kubernetes Engine,
    # the Google APIs agent (node pools' instance groups) with Compute Engine.
    depends = [subnet, *apis.needed_by("gcp:container/cluster:Cluster", cluster.project),
               *apis.needed_by("gcp:compute/instance:Instance", cluster.project),
               *apis.needed_by("gcp:compute/subnetworkIAMMember:SubnetworkIAMMember", host)]
    return [
        gcp.compute.SubnetworkIAMMember(
            f"{cluster.name}-subnet-{agent}", project=host, region=cluster.region, subnetwork=cluster.name,
            role="roles/compute.networkUser", member=member,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=depends))
        for agent, member in agents.items()
    ]
