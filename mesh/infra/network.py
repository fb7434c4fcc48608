"""Network: one VPC of the fleet, its clusters' subnets, NAT, reserved addresses and firewall rules.

The VPC, its subnets, routers, NAT and firewall rules live in the network's project (the Shared VPC
host when clusters of other projects use it); a cluster's load-balancer addresses live in the
cluster's own project, because GKE creates its load balancers' forwarding rules there and an
address must be in the forwarding rule's project.

Which stack creates what, when a fleet runs as several stacks (shards): a cluster's subnet, its
Shared VPC subnet grants, addresses and firewall rules belong to the stack managing the cluster; the
VPC itself, and the Cloud Router and NAT of a region, to the stack managing the first cluster (by
name) on that VPC / in that region. Other stacks refer to the VPC by its id, a known string.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp
from pulumi import RunError

from mesh.infra.node_pools import max_nodes
from mesh.infra.projects import ProjectApis
from mesh.infra.shared_vpc import subnet_grants
from mesh.manifest import schema

# Cloud NAT, sized for nodes that hold long-lived connections to a few east-west gateway IPs.
# A NAT source port is needed per concurrent connection to the *same* destination IP:port, so what
# counts is how many connections one node keeps open to one remote gateway: every sidecar on the
# node (GKE allows 110 pods per node) keeps an HTTP/2 pool per worker thread (2 by default) to it,
# about 220 connections, more under load. Dynamic allocation starts each VM at MIN and doubles up to
# MAX when it needs more: 1024 covers the steady state with headroom, 16384 a burst to one gateway
# without starving other VMs of the address's 64,512 ports.
NAT_MIN_PORTS_PER_VM = 1024
NAT_MAX_PORTS_PER_VM = 16384
NAT_PORTS_PER_ADDRESS = 64512
# Private Google Access VIPs (cloud.google.com/vpc/docs/configure-private-google-access#domain-options):
# *.googleapis.com must resolve to them inside the VPC, or the sidecars' ServiceEntry for these
# addresses never matches and REGISTRY_ONLY drops Google API calls.
GOOGLE_API_VIPS = {
    "private": ("199.36.153.8/30", ["199.36.153.8", "199.36.153.9", "199.36.153.10", "199.36.153.11"]),
    "restricted": ("199.36.153.4/30", ["199.36.153.4", "199.36.153.5", "199.36.153.6", "199.36.153.7"]),
}


def google_apis_domain(fleet: schema.Fleet) -> str | None:
    """`private` or `restricted` when an external sends *.googleapis.com to those VIPs."""
    for external in fleet.externals:
        if "*.googleapis.com" in external.hosts:
            for kind, (cidr, _) in sorted(GOOGLE_API_VIPS.items()):
                if cidr in [str(a) for a in external.addresses]:
                    return kind
    return None


def node_tag(cluster: str) -> str:
    """Network tag on a cluster's nodes: what its firewall rules target."""
    return f"fleet-mesh-{cluster}"


def network_id(spec: schema.Network, name: str) -> str:
    return f"projects/{spec.project}/global/networks/{name}"


def subnet_id(spec: schema.Network, cluster: schema.Cluster) -> str:
    return f"projects/{spec.project}/regions/{cluster.region}/subnetworks/{cluster.name}"


def nat_address_count(clusters: Sequence[schema.Cluster]) -> int:
    """NAT addresses a region needs so every node can get its minimum port allocation at full scale."""
    nodes = sum(max_nodes(c) for c in clusters)
    return max(1, math.ceil(nodes * NAT_MIN_PORTS_PER_VM / NAT_PORTS_PER_ADDRESS))


@dataclass(frozen=True)
class NetworkArgs:
    name: str
    spec: schema.Network
    clusters: list[schema.Cluster]  # managed by this stack, on this VPC
    peers: list[schema.Cluster]  # every cluster on this VPC, this stack's or not
    owns_vpc: bool
    nat_regions: list[str]  # regions whose router and NAT this stack owns
    ingress_clusters: frozenset[str]  # clusters that run an `ingress: true` service
    apis: ProjectApis
    google_apis: str | None = None  # private | restricted: the VIPs *.googleapis.com resolves to here


@dataclass
class EastWest:
    external: pulumi.Output[str]
    internal: pulumi.Output[str] | None


class FleetNetwork(pulumi.ComponentResource):
    """One VPC: subnets, NAT, reserved addresses and firewall rules for its clusters."""

    def __init__(self, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleet-mesh:network:Network", args.name, None, opts)
        self._args = args
        project = args.spec.project
        self._compute = args.apis.needed_by("gcp:compute/network:Network", project)
        self._vpc: list[pulumi.Resource] = []
        self.id = network_id(args.spec, args.name)
        if args.owns_vpc:
            # Custom-mode, global routing: subnets are explicit and regions reach each other internally.
            self._vpc = [gcp.compute.Network(
                args.name, name=args.name, project=project, auto_create_subnetworks=False, routing_mode="GLOBAL",
                opts=pulumi.ResourceOptions(parent=self, depends_on=self._compute))]
        self._child = pulumi.ResourceOptions(parent=self, depends_on=[*self._compute, *self._vpc])
        if args.owns_vpc and args.google_apis:
            self._google_apis_zone(args.google_apis)
        self.subnets: dict[str, gcp.compute.Subnetwork] = {}
        self.subnet_ids: dict[str, str] = {}
        self.subnet_ready: dict[str, list[pulumi.Resource]] = {}
        self.east_west: dict[str, EastWest] = {}
        self.ingress: dict[str, pulumi.Output[str]] = {}
        # region -> its Cloud NAT addresses, for the regions whose NAT this stack owns
        self.nat_by_region: dict[str, list[pulumi.Output[str]]] = {r: self._nat(r) for r in args.nat_regions}
        self.nat_addresses = [address for region in args.nat_regions for address in self.nat_by_region[region]]
        for cluster in args.clusters:
            self._cluster(cluster)
        self.register_outputs({"id": self.id})

    def _google_apis_zone(self, kind: str) -> None:
        """A private googleapis.com zone for this VPC: every Google API name to the chosen VIPs."""
        project = self._args.spec.project
        opts = pulumi.ResourceOptions(parent=self, depends_on=[
            *self._vpc, *self._args.apis.needed_by("gcp:dns/managedZone:ManagedZone", project)])
        zone = gcp.dns.ManagedZone(
            f"{self._name}-googleapis", name=f"{self._name}-googleapis", project=project, dns_name="googleapis.com.",
            description="Private Google Access (fleet-mesh): Google APIs on their private VIPs",
            visibility="private", private_visibility_config={"networks": [{"network_url": self.id}]}, opts=opts)
        record = pulumi.ResourceOptions(parent=self, depends_on=[
            zone, *self._args.apis.needed_by("gcp:dns/recordSet:RecordSet", project)])
        gcp.dns.RecordSet(f"{self._name}-googleapis-a", project=project, managed_zone=zone.name,
                          name=f"{kind}.googleapis.com.", type="A", ttl=300, rrdatas=GOOGLE_API_VIPS[kind][1],
                          opts=record)
        gcp.dns.RecordSet(f"{self._name}-googleapis-cname", project=project, managed_zone=zone.name,
                          name="*.googleapis.com.", type="CNAME", ttl=300, rrdatas=[f"{kind}.googleapis.com."],
                          opts=record)

    def _nat(self, region: str) -> list[pulumi.Output[str]]:
        """Private nodes reach the internet (image pulls, other clusters' external gateways) via NAT
        on reserved addresses, so peers can allow exactly those addresses."""
        name = f"{self._name}-{region}"
        project = self._args.spec.project
        in_region = [c for c in self._args.peers if c.region == region]
        addresses = [
            gcp.compute.Address(f"{name}-nat" if i == 0 else f"{name}-nat-{i}", project=project, region=region,
                                address_type="EXTERNAL", opts=self._child)
            for i in range(nat_address_count(in_region))
        ]
        router = gcp.compute.Router(f"{name}-router", project=project, region=region, network=self.id,
                                    opts=self._child)
        gcp.compute.RouterNat(
            f"{name}-nat", project=project, region=region, router=router.name,
            nat_ip_allocate_option="MANUAL_ONLY", nat_ips=[a.self_link for a in addresses],
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            enable_dynamic_port_allocation=True,
            # Required off with dynamic allocation; it would also pin one port per destination forever.
            enable_endpoint_independent_mapping=False,
            min_ports_per_vm=NAT_MIN_PORTS_PER_VM, max_ports_per_vm=NAT_MAX_PORTS_PER_VM,
            log_config={"enable": True, "filter": "ERRORS_ONLY"},  # port exhaustion shows; normal flows don't
            opts=self._child,
        )
        return [a.address for a in addresses]

    def _cluster(self, cluster: schema.Cluster) -> None:
        ranges = cluster.ip_ranges
        assert ranges is not None  # checked by the program before any resource
        host = self._args.spec.project
        subnet = gcp.compute.Subnetwork(
            f"{cluster.name}-subnet", name=cluster.name, project=host, region=cluster.region,
            network=self.id, ip_cidr_range=ranges.nodes,
            secondary_ip_ranges=[
                {"range_name": f"{cluster.name}-pods", "ip_cidr_range": ranges.pods},
                {"range_name": f"{cluster.name}-services", "ip_cidr_range": ranges.services},
            ],
            private_ip_google_access=True,  # private nodes reach Google APIs without NAT
            opts=self._child,
        )
        self.subnets[cluster.name] = subnet
        self.subnet_ids[cluster.name] = subnet_id(self._args.spec, cluster)
        ready: list[pulumi.Resource] = [subnet]
        if cluster.project != host:
            ready += subnet_grants(cluster, host, subnet, self._args.apis, self)
        self.subnet_ready[cluster.name] = ready
        self.east_west[cluster.name] = EastWest(self._external(cluster, "eastwest"), self._internal(cluster, ready))
        if cluster.name in self._args.ingress_clusters:
            self.ingress[cluster.name] = self._external(cluster, "ingress")

    def _external(self, cluster: schema.Cluster, purpose: str) -> pulumi.Output[str]:
        """An external address GCP allocates (GCP reserves only addresses it hands out or you bring),
        or, where the fleet file pins one, that existing reservation, looked up and checked."""
        name = f"{cluster.name}-{purpose}"
        depends = pulumi.ResourceOptions(
            parent=self, depends_on=self._args.apis.needed_by("gcp:compute/address:Address", cluster.project))
        pinned = cluster.east_west.external if purpose == "eastwest" and cluster.east_west else None
        if pinned is None:
            return gcp.compute.Address(name, name=name, project=cluster.project, region=cluster.region,
                                       address_type="EXTERNAL", network_tier="PREMIUM", opts=depends).address
        # Looked up by the address itself: the reservation may be anyone's, under any name.
        found = gcp.compute.get_addresses_output(project=cluster.project, region=cluster.region,
                                                 filter=f'address = "{pinned}"')
        where = f"{cluster.project}/{cluster.region}"

        def checked(result: Any) -> str:
            reservation = next((a for a in result.addresses if a.address == pinned), None)
            if reservation is None:
                raise RunError(f"fleet file pins {cluster.name}'s external east-west address {pinned}, but no "
                               f"reservation in {where} holds it: reserve it there first (gcloud compute addresses "
                               f"create {name} --project {cluster.project} --region {cluster.region} "
                               f"--addresses {pinned}), or unpin it to let GCP allocate one")
            if reservation.address_type != "EXTERNAL":
                raise RunError(f"fleet file pins {cluster.name}'s external east-west address {pinned}, but "
                               f"{where}/{reservation.name} reserves it as {reservation.address_type}: an external "
                               "load balancer needs an EXTERNAL address")
            return pinned

        return found.apply(checked)

    def _internal(self, cluster: schema.Cluster, subnet_ready: list[pulumi.Resource]) -> pulumi.Output[str] | None:
        """Same-VPC peers dial the internal load balancer: their traffic never leaves the VPC."""
        if sum(1 for peer in self._args.peers if peer.network == cluster.network) < 2:
            return None
        name = f"{cluster.name}-eastwest-internal"
        pinned = cluster.east_west.internal if cluster.east_west else None
        # In the cluster's project (where GKE puts the internal forwarding rule), on the host's subnet.
        # GCE_ENDPOINT is the purpose for an address used by one forwarding rule, which is what GKE
        # creates for a LoadBalancer Service; SHARED_LOADBALANCER_VIP is only for several rules on one IP.
        return gcp.compute.Address(
            name, name=name, project=cluster.project, region=cluster.region, address_type="INTERNAL",
            purpose="GCE_ENDPOINT", subnetwork=self.subnet_ids[cluster.name], address=pinned,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                *subnet_ready, *self._args.apis.needed_by("gcp:compute/address:Address", cluster.project)]),
        ).address

    def firewalls(self, east_west_sources: Mapping[str, pulumi.Input[Sequence[str]] | None],
                  ingress_sources: Sequence[str]) -> None:
        """The rules of this stack's clusters. Declared once every network exists, because the
        external east-west rule admits every NAT address of the fleet."""
        for cluster in self._args.clusters:
            ranges = cluster.ip_ranges
            assert ranges is not None
            target = [node_tag(cluster.name)]
            self._rule(f"{cluster.name}-istio-webhook", target, "15017", [ranges.control_plane])
            peers = [p for p in self._args.peers if p.name != cluster.name and p.ip_ranges is not None]
            if peers:
                self._rule(f"{cluster.name}-eastwest-internal", target, "15443",
                           sorted(r for p in peers for r in (p.ip_ranges.nodes, p.ip_ranges.pods)))  # type: ignore[union-attr]
            external = east_west_sources[cluster.name]
            if external is not None:  # nobody outside the VPC calls it: no external LB, no rule
                self._rule(f"{cluster.name}-eastwest-external", target, "15443", external)
            if cluster.name in self._args.ingress_clusters:
                self._rule(f"{cluster.name}-ingress", target, "443", list(ingress_sources))

    def _rule(self, name: str, target: list[str], port: str, sources: pulumi.Input[Sequence[str]]) -> None:
        # The webhook rule exists because GKE's own control-plane rule allows only 443 and 10250.
        gcp.compute.Firewall(
            name, project=self._args.spec.project, network=self.id, direction="INGRESS", target_tags=target,
            allows=[{"protocol": "tcp", "ports": [port]}], source_ranges=sources, opts=self._child)
