"""What a stack reads from the other stacks of the fleet (`mesh:peerStacks`), and the east-west
address behind every placeholder its compiled objects hold."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
from pulumi import RunError

from mesh.infra.network import FleetNetwork
from mesh.infra.plan import Plan
from mesh.model import address_placeholder
from mesh.render import unresolved_addresses


def peer_outputs(plan: Plan) -> dict[str, pulumi.Output[Any]]:
    """The other shards' clusters (by name) and NAT addresses, from their stack outputs."""
    references = [pulumi.StackReference(stack) for stack in plan.config.peer_stacks]
    clusters = pulumi.Output.all(*[r.get_output("clusters") for r in references]).apply(
        lambda values: {name: c for value in values for name, c in (value or {}).items() if c.get("managed")})
    nat_by_region = pulumi.Output.all(*[r.get_output("natAddressesByRegion") for r in references]).apply(_merged)
    # Every stack of a fleet shares one root (a shard refuses to run without the provided one).
    root = pulumi.Output.all(*[r.get_output("rootCaCertificate") for r in references]).apply(
        lambda values: next((v for v in values if v), None))
    return {"clusters": clusters, "nat_by_region": nat_by_region, "root_ca_certificate": root}


def _merged(values: list[Any]) -> dict[str, dict[str, list[str]]]:
    """network -> region -> NAT addresses, over every peer shard's output."""
    out: dict[str, dict[str, list[str]]] = {}
    for value in values:
        for network, regions in (value or {}).items():
            for region, addresses in regions.items():
                out.setdefault(network, {}).setdefault(region, []).extend(addresses)
    return out


def addresses_of(plan: Plan, networks: Mapping[str, FleetNetwork],
               peer_clusters: pulumi.Output[Any]) -> dict[str, pulumi.Input[str]]:
    """Every east-west placeholder the compiled objects may hold, and the address behind it."""
    addresses: dict[str, pulumi.Input[str]] = {}
    for name in plan.clusters:
        east_west = networks[plan.world.clusters[name].network].east_west[name]
        addresses[address_placeholder(name, "external")] = east_west.external
        if east_west.internal is not None:
            addresses[address_placeholder(name, "internal")] = east_west.internal
    for placeholder in unresolved_addresses(plan.compiled):
        if placeholder not in addresses:  # a cluster another shard manages
            addresses[placeholder] = peer_clusters.apply(_peer_lookup(plan, placeholder))
    return addresses


def _peer_lookup(plan: Plan, placeholder: str) -> Callable[[Mapping[str, Any]], str]:
    name, kind = placeholder.split(".")[:2]
    return lambda clusters: _peer_address(plan, clusters, name, kind)


def _peer_address(plan: Plan, clusters: Mapping[str, Any], name: str, kind: str) -> str:
    address = ((clusters.get(name) or {}).get("eastWest") or {}).get(kind)
    if not address:
        raise RunError(f"no stack in mesh:peerStacks ({', '.join(plan.config.peer_stacks) or 'none'}) exports "
                       f"the {kind} east-west address of {name}, which clusters of this stack call")
    return str(address)
