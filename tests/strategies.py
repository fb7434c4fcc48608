"""Hypothesis strategies for whole valid manifests: fleets, services, locations and calls.

Fleets are small (≤ 6 clusters, ≤ 8 services) but cover every shape the compiler distinguishes:
shared and isolated networks, pinned and unpinned east-west addresses, zonal, two-zone and
zoneless clusters, shared namespaces, multi-port services, port-specific calls, active-active /
primary-standby / weighted locations (weights only on clusters listing zones), tier policies,
traffic policies and ingress services; and approved external destinations of every shape (through
the egress gateway with and without TLS origination, direct with TLS origination, a private
database on fixed addresses, a wildcard for every workload), called by some services on some ports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from mesh.manifest import schema
from mesh.manifest.load import Origin, RawManifest, SourcedService
from mesh.model import World

REGIONS = ("us-east1", "us-west1", "europe-west1")
TIERS = {"front": ["front", "back"], "back": ["back"]}


@dataclass(frozen=True)
class Manifest:
    fleet: schema.Fleet
    services: tuple[schema.Service, ...]
    locations: dict[str, list[schema.Location]]

    def raw(self) -> RawManifest:
        origin = Origin(Path("fleet.yaml"))
        services = tuple(SourcedService(s, Origin(Path(f"services/{s.name}.yaml"))) for s in self.services)
        return RawManifest(Path("."), self.fleet, origin, services, self.locations,
                           Origin(Path("locations.yaml")))

    def world(self, reverse: bool = False) -> World:
        services = [(s, Path(f"services/{s.name}.yaml")) for s in self.services]
        return World.build(self.fleet, services[::-1] if reverse else services, self.locations, Path("."))


@st.composite
def clusters(draw: st.DrawFn) -> list[schema.Cluster]:
    count = draw(st.integers(1, 6))
    networks = draw(st.lists(st.sampled_from(["n1", "n2", "n3"]), min_size=count, max_size=count))
    out = []
    for i, network in enumerate(networks):
        region = draw(st.sampled_from(REGIONS))
        pinned = draw(st.booleans())
        shared = networks.count(network) > 1
        out.append(schema.Cluster(
            name=f"c{i}", project="proj-fleet", region=region, network=network,
            tier="front" if i == 0 else draw(st.sampled_from(sorted(TIERS))),
            zones=draw(st.sampled_from([[], [f"{region}-b"], [f"{region}-b", f"{region}-c"]])),
            east_west=schema.EastWestAddresses(
                internal=f"10.0.0.{i + 1}" if shared else None, external=f"192.0.2.{i + 1}"
            ) if pinned else None,
        ))
    return out


@st.composite
def placements(draw: st.DrawFn, cluster_names: list[str], zoned: list[str]) -> list[schema.Location]:
    """Weights only on clusters listing their zones (the split is per zone: weight_rules)."""
    mode = draw(st.sampled_from(["active", "roles", "weights"] if zoned else ["active", "roles"]))
    pool = zoned if mode == "weights" else cluster_names
    chosen = draw(st.lists(st.sampled_from(pool), min_size=min(2 if mode == "weights" else 1, len(pool)),
                           max_size=3, unique=True))
    if mode == "roles":
        roles = ["primary"] + [draw(st.sampled_from(["primary", "standby"])) for _ in chosen[1:]]
        return [schema.Location(cluster=c, role=r) for c, r in zip(chosen, roles, strict=True)]
    if mode == "weights":
        cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=len(chosen) - 1, max_size=len(chosen) - 1)))
        bounds = [0, *cuts, 100]
        return [schema.Location(cluster=c, weight=bounds[i + 1] - bounds[i]) for i, c in enumerate(chosen)]
    return [schema.Location(cluster=c) for c in chosen]


# (external, a host a caller dials) — one of each shape the compiler distinguishes.
EXTERNALS: tuple[tuple[schema.External, str], ...] = (
    (schema.External(name="x-pay", hosts=["api.pay.example.net"], egress_gateway=True, tiers=["front", "back"],
                     ports=[schema.ExternalPort(number=443, protocol="TLS")]), "api.pay.example.net"),
    (schema.External(name="x-hook", hosts=["hooks.example.org"], egress_gateway=True, originate_tls=True,
                     tiers=["back"], ports=[schema.ExternalPort(number=8443, protocol="HTTPS"),
                                            schema.ExternalPort(number=80, protocol="HTTP")]), "hooks.example.org"),
    (schema.External(name="x-mail", hosts=["mail.example.org"], originate_tls=True, tiers=["front"],
                     ports=[schema.ExternalPort(number=80, protocol="HTTP", target_port=8443)]), "mail.example.org"),
    (schema.External(name="x-db", hosts=["db.private.example"], addresses=["172.20.0.0/24"], tiers=["back"],
                     ports=[schema.ExternalPort(number=5432, protocol="TCP")]), "db.private.example"),
    (schema.External(name="x-apis", hosts=["*.googleapis.com"], addresses=["199.36.153.8/30"], all_workloads=True,
                     ports=[schema.ExternalPort(number=443, protocol="TLS")]), "storage.googleapis.com"),
)


def external_host(name: str) -> str:
    """The host a caller dials for external `name` (a concrete one under a wildcard)."""
    return next(host for ext, host in EXTERNALS if ext.name == name)


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    fleet_clusters = draw(clusters())
    tiers_present = sorted({c.tier for c in fleet_clusters})
    count = draw(st.integers(1, 8))
    services, locations = [], {}
    for i in range(count):
        name = f"s{i}"
        tier = draw(st.sampled_from(tiers_present))
        numbers = draw(st.lists(st.sampled_from([8080, 9090, 5432]), min_size=1, max_size=2, unique=True))
        ports = [schema.Port(name=f"p{n}", number=n, protocol=draw(st.sampled_from(["HTTP", "GRPC", "TCP"])))
                 for n in numbers]
        traffic = draw(st.one_of(st.none(), st.builds(
            schema.Traffic, timeout=st.sampled_from([None, "1s"]),
            retries=st.one_of(st.none(), st.builds(schema.Retries, attempts=st.integers(0, 3))))))
        services.append(dict(name=name, host=f"{name}.svc.test.example", namespace=f"ns{draw(st.integers(0, 3))}",
                             service_account=name, tier=tier, ports=ports, traffic=traffic,
                             ingress=draw(st.booleans())))
        in_tier = [c.name for c in fleet_clusters if c.tier == tier]
        locations[name] = draw(placements(in_tier, [c.name for c in fleet_clusters if c.tier == tier and c.zones]))
    externals = draw(st.lists(st.sampled_from([ext for ext, _ in EXTERNALS]), unique_by=lambda e: e.name, max_size=4))
    built = []
    for spec in services:
        callees = [s for s in services if s["tier"] in TIERS[spec["tier"]] and s["name"] != spec["name"]]
        picked = draw(st.lists(st.sampled_from(callees), unique_by=lambda s: s["name"], max_size=4)) if callees else []
        calls = []
        for callee in picked:
            port = draw(st.one_of(st.none(), st.sampled_from([p.number for p in callee["ports"]])))
            calls.append(schema.Call(host=callee["host"], port=port))
        for external in externals:
            if external.all_workloads or spec["tier"] not in external.tiers or not draw(st.booleans()):
                continue
            port = draw(st.one_of(st.none(), st.sampled_from([p.number for p in external.ports])))
            calls.append(schema.Call(host=external_host(external.name), port=port))
        built.append(schema.Service(**spec, calls=calls))
    fleet = schema.Fleet(
        domains=["svc.test.example"], trust_domain="test.example",
        networks={n: schema.Network(project="proj-net") for n in ("n1", "n2", "n3")},
        tiers={name: schema.Tier(may_call=callees) for name, callees in TIERS.items()},
        clusters=fleet_clusters,
        externals=sorted(externals, key=lambda e: e.name),
    )
    return Manifest(fleet, tuple(built), locations)
