"""The plan of one stack, decided before anything is registered (pure: no Pulumi calls).

`prepare` reads the stack configuration and the manifest, compiles the whole fleet and checks that
this stack (all clusters, or a shard of them) can be deployed: every rule the cloud would enforce
later and that can be known now is a `PlanError` here, before a single resource exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mesh.compile import CompileOptions, compile_fleet, egress
from mesh.compile.context import ClusterContext
from mesh.infra import parts
from mesh.infra.apis import CLUSTER_PROJECT_APIS, NETWORK_PROJECT_APIS
from mesh.infra.control_plane import revision_label
from mesh.infra.shared_vpc import SharedVpcPlan, plan_shared_vpc
from mesh.infra.stack_config import CONFIG_NAMESPACE, MeshConfigPart, StackConfig, parse_stack_config
from mesh.manifest import load
from mesh.model import World, address_placeholder
from mesh.render import unresolved_addresses
from mesh.verify import verify

STACK_RESOURCE_LIMIT = 3000
# Infrastructure a cluster brings besides its mesh objects (GKE, pools, IAM, addresses, firewalls,
# PKI, control plane), from a preview of the example stack; shared networks come on top.
INFRA_PER_CLUSTER = 60
# What a stack holding part 2+ of a cluster's mesh config declares besides the objects: the
# cluster's Kubernetes provider and the mesh config component.
INFRA_PER_PART = 2


def stack_resources(objects: int, clusters: int, part_only: bool, references: int) -> int:
    """What a stack registers: its mesh objects, the infrastructure of the clusters it manages (or
    a part stack's provider and component), and one stack reference per stack it reads."""
    return objects + (INFRA_PER_PART if part_only else INFRA_PER_CLUSTER * clusters) + references


class PlanError(Exception):
    """This stack cannot be deployed as configured; the message says why and what to change."""


@dataclass(frozen=True)
class Plan:
    config: StackConfig
    world: World
    clusters: tuple[str, ...]  # managed by this stack
    compiled: Mapping[str, list[dict[str, Any]]]
    shared_vpc: SharedVpcPlan
    apis: Mapping[str, tuple[str, ...]]  # project -> APIs this stack enables there
    ingress_clusters: frozenset[str]  # managed clusters running an `ingress: true` service
    egress_clusters: frozenset[str]  # managed clusters that need an egress gateway
    binary_authorization: tuple[str, ...]  # projects whose singleton policy this stack declares
    nat_regions: Mapping[str, tuple[str, ...]]  # network -> regions whose NAT this stack owns
    # cluster -> (network, region) of the clusters on other networks that dial its external
    # east-west address: their Cloud NAT addresses, and only theirs, may reach it
    remote_callers: Mapping[str, tuple[tuple[str, str], ...]]
    # The part of one cluster's mesh config this stack holds (`compiled` is then that part alone);
    # from part 2 on, the stack manages no cluster (`clusters` is empty).
    part: MeshConfigPart | None = None

    @property
    def holds_part_only(self) -> bool:
        return self.part is not None and self.part.part_only

    @property
    def estimated_resources(self) -> int:
        return stack_resources(sum(len(objects) for objects in self.compiled.values()), len(self.clusters),
                               self.holds_part_only, len(self.config.peer_stacks))

    @property
    def revision(self) -> str:
        return revision_label(self.config.istio_version)


def prepare(values: Mapping[str, Any], has_root_key: bool) -> Plan:
    config = parse_stack_config(dict(values))
    world = load(config.manifest).world
    part = config.mesh_config_part
    if part is not None and part.cluster not in world.clusters:
        raise PlanError(f"{CONFIG_NAMESPACE}:meshConfigPart names an unknown cluster: {part.cluster}")
    if part is not None and part.part_only:
        compiled = _compile(config, world, (part.cluster,))
        return Plan(config=config, world=world, clusters=(), compiled=compiled,
                    shared_vpc=plan_shared_vpc(world.fleet, ()), apis={}, ingress_clusters=frozenset(),
                    egress_clusters=frozenset(), binary_authorization=(), nat_regions={}, remote_callers={},
                    part=part)
    clusters = tuple(config.clusters or world.clusters)
    _check_clusters(config, world, clusters, has_root_key)
    compiled = _compile(config, world, clusters)
    _check_addresses_resolvable(config, compiled, clusters)
    managed = set(clusters)
    ingress = frozenset(c for s in world.services.values() if s.ingress for c in world.clusters_of(s.name)
                        if c in managed)
    if ingress and not config.ingress_source_ranges:
        raise PlanError(f"{', '.join(sorted(ingress))} run ingress: true services, so they get an ingress gateway "
                        f"whose load balancer needs {CONFIG_NAMESPACE}:ingressSourceRanges (e.g. your CDN's egress "
                        "ranges): an empty list would leave it open to every address")
    return Plan(config=config, world=world, clusters=clusters, compiled=compiled,
                shared_vpc=plan_shared_vpc(world.fleet, clusters),
                apis=_apis(world, clusters, image_projects(config.allowed_images)), ingress_clusters=ingress,
                egress_clusters=frozenset(egress.gateway_clusters(world)) & managed,
                binary_authorization=_binary_authorization_owners(world, managed),
                nat_regions=_nat_regions(world, managed), remote_callers=remote_callers(world, managed), part=part)


def _compile(config: StackConfig, world: World, clusters: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    """The model is the whole fleet; only this stack's clusters are compiled (and checked whole,
    before a part of one is taken)."""
    compiled = compile_fleet(world, CompileOptions(revision=revision_label(config.istio_version)), clusters)
    problems = verify(world, compiled)
    if problems:
        raise PlanError("compiled output fails its own checks (a fleet-mesh bug):\n  " + "\n  ".join(problems))
    part = config.mesh_config_part
    if part is not None:
        compiled[part.cluster] = parts.select(compiled[part.cluster], part.part, part.of)
    return compiled


def _check_clusters(config: StackConfig, world: World, clusters: tuple[str, ...], has_root_key: bool) -> None:
    unknown = sorted(set(clusters) - set(world.clusters))
    if unknown:
        raise PlanError(f"{CONFIG_NAMESPACE}:clusters names unknown clusters: {', '.join(unknown)}")
    missing = [c for c in clusters if world.clusters[c].ip_ranges is None]
    if missing:
        raise PlanError(f"clusters without ipRanges in the manifest (needed for their subnets): {', '.join(missing)}")
    if (config.root_ca_certificate is None) != (not has_root_key):
        raise PlanError(f"set both {CONFIG_NAMESPACE}:rootCaCertificate and the secret {CONFIG_NAMESPACE}:rootCaKey, "
                        "or neither (a root is then generated)")
    for name in config.decommission:
        if name not in clusters:
            raise PlanError(f"{CONFIG_NAMESPACE}:decommission names {name!r}, which this stack does not manage")
        running = sorted(s for s in world.services if name in world.clusters_of(s))
        if running:
            raise PlanError(f"{CONFIG_NAMESPACE}:decommission: {name} still runs {', '.join(running)}; move them "
                            "(locations.yaml) before lifting its deletion protection")
    if len(clusters) < len(world.clusters) and config.root_ca_certificate is None:
        raise PlanError("a stack managing a subset of clusters needs the fleet's shared root CA as "
                        f"{CONFIG_NAMESPACE}:rootCaCertificate and {CONFIG_NAMESPACE}:rootCaKey: "
                        "each stack generating its own would break mTLS between them")


def _check_addresses_resolvable(config: StackConfig, compiled: Mapping[str, list[dict[str, Any]]],
                                clusters: tuple[str, ...]) -> None:
    """Unpinned addresses are reserved by the stack managing that cluster: others read them from
    that stack's outputs (`mesh:peerStacks`), or cannot know them."""
    if config.peer_stacks:
        return  # a cluster no peer exports fails at preview, naming the cluster (fleet.py)
    reserved = {address_placeholder(c, kind) for c in clusters for kind in ("internal", "external")}
    needed = set(unresolved_addresses({c: compiled[c] for c in clusters}))
    foreign = sorted(needed - reserved)
    if foreign:
        owners = sorted({a.split(".")[0] for a in foreign})
        raise PlanError(f"clusters managed by other stacks are called from here but pin no east-west address: "
                        f"{', '.join(owners)}; list the stacks that manage them in {CONFIG_NAMESPACE}:peerStacks "
                        "(their outputs give the addresses), or pin eastWest addresses in the fleet file")


_IMAGE_PROJECT = re.compile(r"^(?:[a-z0-9-]+-docker\.pkg\.dev|(?:[a-z]+\.)?gcr\.io)/([a-z][-a-z0-9]{4,28}[a-z0-9])/")


def image_projects(allowed_images: list[str]) -> tuple[str, ...]:
    """Projects whose Artifact Registry (or gcr.io) the allowed images come from: the node service
    accounts need a reader grant there, or every pod of those images ends in ImagePullBackOff."""
    return tuple(sorted({m.group(1) for p in allowed_images if (m := _IMAGE_PROJECT.match(p))}))


def _apis(world: World, clusters: tuple[str, ...], images: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    wanted: dict[str, set[str]] = {project: {"cloudresourcemanager.googleapis.com"} for project in images}
    for name in clusters:
        spec = world.clusters[name]
        wanted.setdefault(spec.project, set()).update(CLUSTER_PROJECT_APIS)
        wanted.setdefault(world.fleet.networks[spec.network].project, set()).update(NETWORK_PROJECT_APIS)
    return {project: tuple(sorted(apis)) for project, apis in sorted(wanted.items())}


def first_of_project(world: World, project: str) -> str:
    """The cluster (first by name) whose stack owns a project's singletons (Binary Authorization)."""
    return min(name for name, spec in world.clusters.items() if spec.project == project)


def _binary_authorization_owners(world: World, managed: set[str]) -> tuple[str, ...]:
    projects = {spec.project for spec in world.clusters.values()}
    return tuple(sorted(p for p in projects if first_of_project(world, p) in managed))


def remote_callers(world: World, managed: set[str]) -> dict[str, tuple[tuple[str, str], ...]]:
    """Who dials each managed cluster's external east-west address: a cluster on another network
    that calls one of its services, or publishes one on its ingress (and fails over to it)."""
    found: dict[str, set[tuple[str, str]]] = {name: set() for name in sorted(managed)}
    options = CompileOptions()
    for name, view in world.views.items():
        ctx = ClusterContext(world, view, options)
        caller = world.clusters[name]
        for service in view.needed:
            if not ctx.dialled_here(service):
                continue
            for server in world.clusters_of(service):
                if server in found and server != name and not world.shares_network(name, server):
                    found[server].add((caller.network, caller.region))
    return {name: tuple(sorted(pairs)) for name, pairs in found.items()}


def nat_owners(world: World) -> dict[tuple[str, str], str]:
    """(network, region) -> the cluster (first by name there) whose stack owns that router and NAT."""
    first: dict[tuple[str, str], str] = {}
    for cluster in world.clusters.values():  # sorted by name
        first.setdefault((cluster.network, cluster.region), cluster.name)
    return first


def _nat_regions(world: World, managed: set[str]) -> dict[str, tuple[str, ...]]:
    owned = [key for key, cluster in nat_owners(world).items() if cluster in managed]
    return {network: tuple(sorted(region for n, region in owned if n == network))
            for network in sorted({world.clusters[c].network for c in managed})}
