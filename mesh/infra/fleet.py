"""Declare a plan: every component of this stack, wired in the order the cloud needs them.

APIs first; then Shared VPC hosts and attachments and each project's Binary Authorization policy;
networks (subnets, grants, NAT, addresses); firewall rules once every NAT address is known; then per
cluster: GKE (after its subnet, grants, attachment and policy), its Istio control plane, its mesh
config. Other shards' addresses come from their stack outputs (`mesh:peerStacks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi import RunError

from mesh.infra.control_plane import ChartSource, ControlPlaneArgs, IngressArgs, IstioControlPlane, revision_label
from mesh.infra.gke import ClusterArgs, GkeCluster, binary_authorization_policy, location_of
from mesh.infra.mesh_config import MeshConfig
from mesh.infra.network import FleetNetwork, NetworkArgs, google_apis_domain
from mesh.infra.part_stack import declare_part
from mesh.infra.peers import addresses_of, peer_outputs
from mesh.infra.pki import MeshPki, ProvidedRoot
from mesh.infra.plan import STACK_RESOURCE_LIMIT, Plan, first_of_project, image_projects
from mesh.infra.projects import ProjectApis
from mesh.infra.shared_vpc import SharedVpc, host_of, owners
from mesh.model import World
from mesh.outputs import SCHEMA_VERSION, services_output


def declare(plan: Plan, root_key: pulumi.Output[str] | None) -> None:
    if plan.holds_part_only:
        declare_part(plan)
        return
    world, config = plan.world, plan.config
    fleet = world.fleet
    estimate = plan.estimated_resources
    if estimate > STACK_RESOURCE_LIMIT:
        # Said before anything is registered: past a few thousand resources Pulumi's engine slows
        # down badly (a 1.3k-resource stack took minutes to preview, pulumi/pulumi#7682).
        pulumi.log.warn(
            f"this stack declares about {estimate:,} resources, more than {STACK_RESOURCE_LIMIT:,}: split it into "
            f"shards with mesh:clusters (`mesh shards` proposes a split; `mesh size` shows what each cluster holds)")
    apis = ProjectApis("apis", plan.apis)
    shared_vpc = SharedVpc(plan.shared_vpc, apis)
    policies = {project: binary_authorization_policy(project, config.allowed_images, apis)
                for project in plan.binary_authorization}
    root = ProvidedRoot(config.root_ca_certificate, root_key) if config.root_ca_certificate and root_key else None
    pki = MeshPki("mesh-pki", fleet.trust_domain, list(plan.clusters), root)
    networks = _networks(plan, apis)
    peers = peer_outputs(plan)
    nat = [address for network in networks.values() for address in network.nat_addresses]
    sources = {name: _east_west_sources(plan, name, networks, peers["nat_by_region"]) for name in plan.clusters}
    for network in networks.values():
        network.firewalls(sources, config.ingress_source_ranges)
    addresses = addresses_of(plan, networks, peers["clusters"])
    stack = _StackWide(apis, shared_vpc, policies, pki, networks, sources, addresses)
    exported: dict[str, Any] = {}
    kubeconfigs: dict[str, pulumi.Output[str]] = {}
    for name in plan.clusters:
        exported[name], kubeconfigs[name] = _cluster(plan, name, stack)
    pulumi.export("schemaVersion", SCHEMA_VERSION)
    pulumi.export("clusters", exported)
    pulumi.export("services", services_output(world))
    pulumi.export("natAddresses", pulumi.Output.all(*nat).apply(sorted))
    pulumi.export("natAddressesByRegion", {
        name: {region: pulumi.Output.all(*addresses).apply(sorted)
               for region, addresses in network.nat_by_region.items()}
        for name, network in networks.items() if network.nat_by_region})
    pulumi.export("rootCaCertificate", pki.root_certificate)
    pulumi.export("kubeconfigs", pulumi.Output.secret(kubeconfigs))


@dataclass(frozen=True)
class _StackWide:
    """What every cluster of the stack is declared against."""

    apis: ProjectApis
    shared_vpc: SharedVpc
    policies: Mapping[str, pulumi.Resource]  # project -> its Binary Authorization policy, if declared here
    pki: MeshPki
    networks: Mapping[str, FleetNetwork]
    sources: Mapping[str, pulumi.Output[list[str]] | None]  # who may reach each external east-west gateway
    addresses: Mapping[str, pulumi.Input[str]]  # east-west placeholder -> address


def _cluster(plan: Plan, name: str, stack: _StackWide) -> tuple[dict[str, Any], pulumi.Output[str]]:
    """One cluster: GKE, its Istio control plane, its mesh config; its entry in `clusters` and its
    kubeconfig."""
    world, config, fleet = plan.world, plan.config, plan.world.fleet
    spec = world.clusters[name]
    network = stack.networks[spec.network]
    attachment = stack.shared_vpc.ready.get((host_of(fleet, spec) or "", spec.project), [])
    policy = [stack.policies[spec.project]] if spec.project in stack.policies else []
    gke = GkeCluster(name, ClusterArgs(
        spec=spec, network=network.id, subnetwork=network.subnet_ids[name],
        release_channel=config.release_channel, authorized_networks=config.master_authorized_networks,
        apis=stack.apis, after=[*network.subnet_ready[name], *attachment, *policy],
        decommissioned=name in config.decommission, image_projects=image_projects(config.allowed_images),
        shared_vpc_owner=_owner_elsewhere(plan, spec),
        policy_owner=None if spec.project in stack.policies else first_of_project(world, spec.project)))
    east_west = network.east_west[name]
    control_plane = IstioControlPlane(name, ControlPlaneArgs(
        cluster=name, network=world.istio_network(name), mesh_id=fleet.mesh_id, trust_domain=fleet.trust_domain,
        versions=config.installed_versions, version=config.istio_version,
        charts=ChartSource(config.chart_repository), ca=stack.pki.clusters[name],
        size=spec.size or "medium", zonal=len(spec.zones) == 1,
        external_address=east_west.external, east_west_sources=stack.sources[name],
        internal_address=east_west.internal, internal_sources=_internal_sources(world, name),
        ingress=IngressArgs(fleet.ingress_gateway.namespace, fleet.ingress_gateway.service_account,
                            network.ingress[name], config.ingress_source_ranges)
        if name in plan.ingress_clusters else None,
        egress=name in plan.egress_clusters,
    ), opts=pulumi.ResourceOptions(providers=[gke.provider]))
    mesh_config = MeshConfig(name, plan.compiled[name], stack.addresses, after=control_plane.ready,
                             namespaces=control_plane.namespaces, opts=pulumi.ResourceOptions(providers=[gke.provider]))
    exported = {
        "name": name, "project": spec.project, "region": spec.region, "location": location_of(spec),
        "network": spec.network, "istioNetwork": world.istio_network(name), "tier": spec.tier,
        "endpoint": gke.endpoint, "dnsEndpoint": gke.dns_endpoint,
        "eastWest": {"external": east_west.external, "internal": east_west.internal},
        "ingress": network.ingress.get(name),
        # Calls through the egress gateway leave from the region's Cloud NAT: what the other side
        # allowlists (None where no gateway runs, or the NAT belongs to another shard).
        "egress": network.nat_by_region.get(spec.region) if name in plan.egress_clusters else None,
        "istioVersion": config.istio_version, "istioRevision": plan.revision,
        "istioRevisions": [revision_label(v) for v in config.installed_versions], "managed": True,
        # Read by the stacks holding the other parts; known once istiod and this stack's
        # Namespaces (mesh-imports among them) are applied, so that a part never applies objects
        # that istiod's webhook cannot validate yet or whose namespace does not exist.
        "meshConfigParts": _after([*control_plane.ready, *mesh_config.namespaces.values()], _parts_of(plan, name)),
    }
    return exported, gke.kubeconfig


def _after(resources: list[pulumi.Resource], value: int) -> pulumi.Output[int]:
    return pulumi.Output.all(*(r.urn for r in resources)).apply(lambda _: value)


def _parts_of(plan: Plan, cluster: str) -> int:
    return plan.part.of if plan.part is not None and plan.part.cluster == cluster else 1


def _networks(plan: Plan, apis: ProjectApis) -> dict[str, FleetNetwork]:
    """One component per VPC this stack touches; VPC and NAT owned by the first cluster's stack."""
    world = plan.world
    managed = set(plan.clusters)
    out = {}
    for name in sorted({world.clusters[c].network for c in plan.clusters}):
        peers = [c for c in world.clusters.values() if c.network == name]  # sorted by name
        out[name] = FleetNetwork(NetworkArgs(
            name=name, spec=world.fleet.networks[name], clusters=[c for c in peers if c.name in managed],
            peers=peers, owns_vpc=peers[0].name in managed, nat_regions=list(plan.nat_regions[name]),
            ingress_clusters=plan.ingress_clusters, apis=apis,
            google_apis=google_apis_domain(world.fleet)))
    return out


def _east_west_sources(plan: Plan, name: str, networks: Mapping[str, FleetNetwork],
                       peer_nat: pulumi.Output[Any]) -> pulumi.Output[list[str]] | None:
    """Who may reach a cluster's external east-west gateway: the Cloud NAT addresses of exactly the
    regions and networks its remote callers run in (so the PCI data tier admits no edge NAT), plus
    mesh:eastWestSourceRanges. None when nobody outside its VPC calls it: no external LB then."""
    wanted = plan.remote_callers[name]
    extra = plan.config.east_west_source_ranges
    if not wanted and not extra:
        return None
    own = [address for network, region in wanted if network in networks
           for address in networks[network].nat_by_region.get(region, [])]

    def ranges(values: list[Any]) -> list[str]:
        peers, mine = values[0], values[1:]
        found = {*mine, *(ip for network, region in wanted for ip in (peers.get(network) or {}).get(region, []))}
        if wanted and not found and not extra:  # hand-set mesh:eastWestSourceRanges may stand in for NAT
            callers = ", ".join(f"{n}/{r}" for n, r in wanted[:5]) + (f" and {len(wanted) - 5} more" if len(wanted) > 5
                                                                        else "")
            raise RunError(f"{name} is called from {callers}, but no NAT address is known for them (neither this "
                           "stack nor mesh:peerStacks owns their NAT, and mesh:eastWestSourceRanges is empty): its "
                           "external east-west load balancer would admit nobody, or everybody")
        return sorted({*extra, *(f"{ip}/32" for ip in found)})

    return pulumi.Output.all(peer_nat, *own).apply(ranges)


def _owner_elsewhere(plan: Plan, spec: Any) -> str | None:
    """A cluster whose stack (not this one) declares part of this one's Shared VPC setup."""
    found = owners(plan.world.fleet, spec)
    return next((owner for owner in found or () if owner not in plan.clusters), None)


def _internal_sources(world: World, cluster: str) -> list[str]:
    """Who may dial a cluster's internal east-west load balancer: the nodes and pods of its VPC peers."""
    network = world.clusters[cluster].network
    return sorted(r for peer in world.clusters.values() if peer.network == network and peer.name != cluster
                  and peer.ip_ranges is not None for r in (peer.ip_ranges.nodes, peer.ip_ranges.pods))
