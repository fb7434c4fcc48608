"""The Pulumi program: decide everything first (pure), then declare it.

`prepare` reads the stack configuration and the manifest, compiles the whole fleet and checks that
this stack (all clusters, or a shard of them) can be deployed: every error is raised before a single
resource is registered. `declare` then builds, per managed cluster: network pieces, a hardened GKE
cluster with its own Kubernetes provider, its intermediate CA, its Istio control plane and its share
of the compiled mesh; and exports the outputs documented in `mesh.outputs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from mesh.compile import CompileOptions, compile_fleet
from mesh.diagnostics import ManifestError
from mesh.infra.control_plane import ChartSource, ControlPlaneArgs, IstioControlPlane
from mesh.infra.gke import ClusterArgs, GkeCluster, location_of
from mesh.infra.mesh_config import MeshConfig
from mesh.infra.network import FleetNetwork, NetworkArgs
from mesh.infra.pki import MeshPki, ProvidedRoot
from mesh.infra.stack_config import CONFIG_NAMESPACE, StackConfig, StackConfigError, parse_stack_config
from mesh.manifest import load
from mesh.model import World, address_placeholder
from mesh.outputs import SCHEMA_VERSION
from mesh.render import unresolved_addresses
from mesh.verify import verify

LIST_KEYS = ("clusters", "masterAuthorizedNetworks", "eastWestSourceRanges")
STRING_KEYS = ("manifest", "istioVersion", "chartRepository", "releaseChannel", "rootCaCertificate")


class PlanError(Exception):
    """This stack cannot be deployed as configured; the message says why and what to change."""


@dataclass(frozen=True)
class Plan:
    config: StackConfig
    world: World
    clusters: tuple[str, ...]  # managed by this stack
    compiled: Mapping[str, list[dict[str, Any]]]

    @property
    def sharded(self) -> bool:
        return len(self.clusters) < len(self.world.clusters)


def read_config() -> dict[str, Any]:
    config = pulumi.Config(CONFIG_NAMESPACE)
    values: dict[str, Any] = {key: config.get(key) for key in STRING_KEYS}
    values.update({key: config.get_object(key) for key in LIST_KEYS})
    return {key: value for key, value in values.items() if value is not None}


def prepare(values: Mapping[str, Any], has_root_key: bool) -> Plan:
    config = parse_stack_config(dict(values))
    world = load(config.manifest).world
    clusters = tuple(config.clusters or world.clusters)
    unknown = sorted(set(clusters) - set(world.clusters))
    if unknown:
        raise PlanError(f"{CONFIG_NAMESPACE}:clusters names unknown clusters: {', '.join(unknown)}")
    missing = [c for c in clusters if world.clusters[c].ip_ranges is None]
    if missing:
        raise PlanError(f"clusters without ipRanges in the manifest (needed for their subnets): {', '.join(missing)}")
    if (config.root_ca_certificate is None) != (not has_root_key):
        raise PlanError(f"set both {CONFIG_NAMESPACE}:rootCaCertificate and the secret {CONFIG_NAMESPACE}:rootCaKey, "
                        "or neither (a root is then generated)")
    if len(clusters) < len(world.clusters) and config.root_ca_certificate is None:
        raise PlanError("a stack managing a subset of clusters needs the fleet's shared root CA as "
                        f"{CONFIG_NAMESPACE}:rootCaCertificate and {CONFIG_NAMESPACE}:rootCaKey: "
                        "each stack generating its own would break mTLS between them")
    compiled = compile_fleet(world, CompileOptions())
    problems = verify(world, compiled)
    if problems:
        raise PlanError("compiled output fails its own checks (a fleet-mesh bug):\n  " + "\n  ".join(problems))
    _check_addresses_resolvable(compiled, clusters)
    return Plan(config, world, clusters, {c: compiled[c] for c in clusters})


def _check_addresses_resolvable(compiled: Mapping[str, list[dict[str, Any]]], clusters: tuple[str, ...]) -> None:
    """Unpinned addresses are reserved by the stack managing that cluster: others cannot know them."""
    reserved = {address_placeholder(c, kind) for c in clusters for kind in ("internal", "external")}
    needed = set(unresolved_addresses({c: compiled[c] for c in clusters}))
    foreign = sorted(needed - reserved)
    if foreign:
        owners = sorted({a.split(".")[0] for a in foreign})
        raise PlanError(f"clusters managed by other stacks are called from here but pin no east-west address: "
                        f"{', '.join(owners)}; pin eastWest addresses for them in the fleet file")


def declare(plan: Plan, root_key: pulumi.Output[str] | None) -> None:
    world, config = plan.world, plan.config
    fleet = world.fleet
    root = ProvidedRoot(config.root_ca_certificate, root_key) if config.root_ca_certificate and root_key else None
    pki = MeshPki("mesh-pki", fleet.trust_domain, list(plan.clusters), root)
    networks = _networks(plan)
    nat = [address for network in networks.values() for address in network.nat_addresses]
    sources = pulumi.Output.all(*nat).apply(
        lambda ips: sorted({*config.east_west_source_ranges, *(f"{ip}/32" for ip in ips)}))
    addresses: dict[str, pulumi.Input[str]] = {}
    for name in plan.clusters:
        east_west = networks[world.clusters[name].network].east_west[name]
        addresses[address_placeholder(name, "external")] = east_west.external
        if east_west.internal is not None:
            addresses[address_placeholder(name, "internal")] = east_west.internal
    exported: dict[str, Any] = {}
    kubeconfigs: dict[str, pulumi.Output[str]] = {}
    for name in plan.clusters:
        spec = world.clusters[name]
        network = networks[spec.network]
        east_west = network.east_west[name]
        gke = GkeCluster(name, ClusterArgs(
            spec=spec, network=network.self_link, subnetwork=network.subnets[name].self_link,
            release_channel=config.release_channel, authorized_networks=config.master_authorized_networks,
            east_west_sources=sources, network_project=fleet.networks[spec.network].project))
        on_cluster = pulumi.ResourceOptions(providers=[gke.provider])
        control_plane = IstioControlPlane(name, ControlPlaneArgs(
            cluster=name, network=world.istio_network(name), mesh_id=fleet.mesh_id, trust_domain=fleet.trust_domain,
            versions=(config.istio_version,), version=config.istio_version,
            charts=ChartSource(config.chart_repository), ca=pki.clusters[name],
            size=spec.size or "medium", zonal=len(spec.zones) == 1,
            external_address=east_west.external, east_west_sources=sources,
            internal_address=east_west.internal, internal_sources=[], ingress=None,
        ), opts=on_cluster)
        MeshConfig(name, plan.compiled[name], addresses, after=control_plane.ready, opts=on_cluster)
        kubeconfigs[name] = gke.kubeconfig
        exported[name] = {
            "name": name, "project": spec.project, "region": spec.region, "location": location_of(spec),
            "network": spec.network, "istioNetwork": world.istio_network(name), "tier": spec.tier,
            "endpoint": gke.endpoint,
            "eastWest": {"external": east_west.external, "internal": east_west.internal},
            "istioRevision": config.istio_version, "managed": True,
        }
    pulumi.export("schemaVersion", SCHEMA_VERSION)
    pulumi.export("clusters", exported)
    pulumi.export("services", _services(world))
    pulumi.export("rootCaCertificate", pki.root_certificate)
    pulumi.export("kubeconfigs", pulumi.Output.secret(kubeconfigs))


def _networks(plan: Plan) -> dict[str, FleetNetwork]:
    """One component per VPC this stack touches; VPC and NAT owned by the first cluster's stack."""
    world = plan.world
    managed = set(plan.clusters)
    out = {}
    for name in sorted({world.clusters[c].network for c in plan.clusters}):
        peers = [c for c in world.clusters.values() if c.network == name]  # sorted by name
        first_in_region: dict[str, str] = {}
        for peer in peers:
            first_in_region.setdefault(peer.region, peer.name)
        out[name] = FleetNetwork(NetworkArgs(
            name=name, spec=world.fleet.networks[name], clusters=[c for c in peers if c.name in managed],
            peers=peers, owns_vpc=peers[0].name in managed,
            nat_regions=sorted(region for region, first in first_in_region.items() if first in managed)))
    return out


def _services(world: World) -> dict[str, Any]:
    return {
        s.name: {
            "host": s.host, "namespace": s.namespace,
            "ports": [{"name": p.name, "number": p.number, "protocol": p.protocol} for p in s.ports],
            "clusters": list(world.clusters_of(s.name)),
        }
        for s in world.services.values()
    }


def run() -> None:
    """Entry point of `__main__.py`. User mistakes surface as one clear error, not a traceback."""
    config = pulumi.Config(CONFIG_NAMESPACE)
    root_key = config.get_secret("rootCaKey")
    try:
        plan = prepare(read_config(), has_root_key=root_key is not None)
    except ManifestError as exc:
        raise pulumi.RunError("the manifest has errors:\n" + "\n".join(d.render() for d in exc.diagnostics)) from None
    except (StackConfigError, PlanError) as exc:
        raise pulumi.RunError(str(exc)) from None
    declare(plan, root_key)
