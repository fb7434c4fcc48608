"""Network: one VPC of the fleet, its clusters' subnets, NAT, east-west addresses and internal firewall rules.

Which stack creates what, when a fleet runs as several stacks (shards): a cluster's subnet, addresses
and firewall rules belong to the stack managing the cluster; the VPC itself, and the Cloud Router and
NAT of a region, to the stack managing the first cluster (by name) on that VPC / in that region. Other
stacks refer to the VPC by its self link, so no stack depends on another's state.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from mesh.manifest import schema


def node_tag(cluster: str) -> str:
    """Network tag on a cluster's nodes: what its firewall rules target."""
    return f"fleet-mesh-{cluster}"


@dataclass(frozen=True)
class NetworkArgs:
    name: str
    spec: schema.Network
    clusters: list[schema.Cluster]  # managed by this stack, on this VPC
    peers: list[schema.Cluster]  # every cluster on this VPC, this stack's or not
    owns_vpc: bool
    nat_regions: list[str]  # regions whose router and NAT this stack owns


@dataclass
class EastWest:
    external: pulumi.Output[str]
    internal: pulumi.Output[str] | None


class FleetNetwork(pulumi.ComponentResource):
    """One VPC: subnets, NAT, reserved east-west addresses and firewall rules for its clusters."""

    def __init__(self, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleet-mesh:network:Network", args.name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project = args.spec.project
        if args.owns_vpc:
            # Custom-mode, global routing: subnets are explicit and regions reach each other internally.
            vpc = gcp.compute.Network(args.name, name=args.name, project=project, auto_create_subnetworks=False,
                                      routing_mode="GLOBAL", opts=child)
            self.self_link: pulumi.Input[str] = vpc.self_link
        else:
            self.self_link = f"projects/{project}/global/networks/{args.name}"
        self.subnets: dict[str, gcp.compute.Subnetwork] = {}
        self.east_west: dict[str, EastWest] = {}
        nat_addresses = [self._nat(region, project, child) for region in args.nat_regions]
        for cluster in args.clusters:
            self._cluster(args, cluster, project, child)
        for cluster in args.clusters:
            self._firewalls(args, cluster, project, child)
        self.nat_addresses = nat_addresses
        self.register_outputs({"selfLink": self.self_link})

    def _nat(self, region: str, project: str, child: pulumi.ResourceOptions) -> pulumi.Output[str]:
        """Private nodes reach the internet (image pulls, other clusters' external gateways) via NAT
        on a reserved address, so peers can allow exactly that address."""
        name = f"{self._name}-{region}"
        address = gcp.compute.Address(f"{name}-nat", project=project, region=region, address_type="EXTERNAL",
                                      opts=child)
        router = gcp.compute.Router(f"{name}-router", project=project, region=region, network=self.self_link,
                                    opts=child)
        gcp.compute.RouterNat(
            f"{name}-nat", project=project, region=region, router=router.name,
            nat_ip_allocate_option="MANUAL_ONLY", nat_ips=[address.self_link],
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            log_config={"enable": True, "filter": "ERRORS_ONLY"}, opts=child,
        )
        return address.address

    def _cluster(self, args: NetworkArgs, cluster: schema.Cluster, project: str,
                 child: pulumi.ResourceOptions) -> None:
        ranges = cluster.ip_ranges
        assert ranges is not None  # checked by the program before any resource
        subnet = gcp.compute.Subnetwork(
            f"{cluster.name}-subnet", name=cluster.name, project=project, region=cluster.region,
            network=self.self_link, ip_cidr_range=ranges.nodes,
            secondary_ip_ranges=[
                {"range_name": f"{cluster.name}-pods", "ip_cidr_range": ranges.pods},
                {"range_name": f"{cluster.name}-services", "ip_cidr_range": ranges.services},
            ],
            private_ip_google_access=True,  # private nodes reach Google APIs without NAT
            opts=child,
        )
        self.subnets[cluster.name] = subnet
        pinned = cluster.east_west or schema.EastWestAddresses()
        external = gcp.compute.Address(
            f"{cluster.name}-eastwest-external", name=f"{cluster.name}-eastwest", project=cluster.project,
            region=cluster.region, address_type="EXTERNAL", address=pinned.external, opts=child)
        internal = None
        if sum(1 for peer in args.peers if peer.network == cluster.network) > 1:
            # Same-VPC peers dial the internal address: their traffic never leaves the VPC.
            internal = gcp.compute.Address(
                f"{cluster.name}-eastwest-internal", name=f"{cluster.name}-eastwest-internal",
                project=project, region=cluster.region, address_type="INTERNAL", subnetwork=subnet.id,
                address=pinned.internal, opts=child).address
        self.east_west[cluster.name] = EastWest(external.address, internal)

    def _firewalls(self, args: NetworkArgs, cluster: schema.Cluster, project: str,
                   child: pulumi.ResourceOptions) -> None:
        ranges = cluster.ip_ranges
        assert ranges is not None
        target = [node_tag(cluster.name)]
        # GKE's own master rule allows 443/10250 only; istiod's webhook listens on 15017.
        gcp.compute.Firewall(
            f"{cluster.name}-istio-webhook", project=project, network=self.self_link, direction="INGRESS",
            source_ranges=[ranges.control_plane], target_tags=target,
            allows=[{"protocol": "tcp", "ports": ["15017"]}], opts=child)
        peers = [p for p in args.peers if p.name != cluster.name and p.ip_ranges is not None]
        if peers:
            gcp.compute.Firewall(
                f"{cluster.name}-eastwest-internal", project=project, network=self.self_link,
                direction="INGRESS", target_tags=target, allows=[{"protocol": "tcp", "ports": ["15443"]}],
                source_ranges=sorted(r for p in peers for r in (p.ip_ranges.nodes, p.ip_ranges.pods)),  # type: ignore[union-attr]
                opts=child)
        # The external east-west rule needs every NAT address of the stack, so it is declared with
        # the cluster's gateway (gke.py), once all networks exist.
