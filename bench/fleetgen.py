"""Deterministic synthetic fleets for benchmarking the compiler.

`generate(size, outdir)` writes a manifest directory laid out exactly like a real stack::

    OUTDIR/fleet.yaml            the platform's fleet: domains, networks, tiers, clusters
    OUTDIR/locations.yaml        where each service runs
    OUTDIR/services/<name>.yaml  one file per service

Sizes (see `SIZES`)::

    S     10 clusters,    500 services,   5,000 calls
    L    100 clusters,  5,000 services,  50,000 calls
    XL   300 clusters, 20,000 services, 200,000 calls

The benchmark compares what the compiler emits against a full-mesh baseline (every sidecar told about
every service in every cluster), so the fleet has the shape that makes a real fleet much sparser than a
full mesh. A uniform random fleet would get that comparison wrong:

* Clusters are spread over 5-12 GCP regions, more of them in the first few regions. Each tier's
  clusters cover several regions, so primary/standby pairs can sit in different regions.
* Networks: a few shared flat VPCs of several clusters each (they reach each other's east-west gateways
  on internal 10.x addresses), and every other cluster on its own isolated VPC (reached on its external
  address only). Every cluster pins its east-west addresses: a unique `external` address from
  100.64.0.0/10 and, on a shared network, a unique `internal` address inside its node range; every
  cluster has an address plan (`ipRanges`) unique across the fleet.
* Three tiers with a one-way policy: edge -> edge, core; core -> core, data; data -> data. A cluster
  belongs to one tier and a service runs only in clusters of its tier. The service's name says its tier
  (`checkout-gateway` is edge, `checkout-engine` core, `checkout-db` data).
* Locations: most services run in one cluster or two; about 10% run active-active in three, 5% as a
  primary with one or two standbys in other regions, 3% weighted (80/20, 90/10, ...; weights sum to
  100). Bigger clusters host more services.
* Calls: exactly the stated total, about 10 per service on average with a skewed (log-normal) number per
  service: edge services call the most, data stores the fewest, some services call nothing. Callees are
  picked with Zipf-like popularity (a few services such as an auth service are called by very many), only
  along the tier policy, never the caller itself, never the same host twice. A call names a `port` most
  often when the callee serves two ports.
* Externals: four approved destinations outside the mesh, one of each shape (egress gateway, TLS
  origination, a private database on a fixed range, Google APIs for every workload); about 10% of
  services also call one their tier may use — drawn from a second generator, so the mesh part of the
  fleet is the one it was before externals existed. (Not counted in `calls`.)
* Ports: one or two per service from realistic defaults (HTTP 8080, GRPC 9090, TCP 5432/6379/...).
* Hosts are `<name>.svc.<domain>` (edge services under the public domain, the rest under the internal
  one); about one namespace for every three services (a team's namespace, named after its business
  domain, often spanning tiers: checkout-web and checkout-db); the service account is the service
  name. Some services set traffic policy, and most edge services are reachable from the ingress gateway.

Every fleet is valid by construction: unique names and hosts, hosts under a declared domain, a service's
tier equal to its clusters' tier, calls only to allowed tiers and to existing hosts and ports, at least
one location per service, locations all plain or all roles (at least one primary) or all weights summing
to 100, no cluster twice in one service's locations, names matching the schema's patterns.

Output is byte-identical across runs and PYTHONHASHSEED values: one `random.Random(seed)` per size,
and nothing is ever iterated out of a set. Files are what `yaml.safe_dump(doc, sort_keys=False)` writes,
in the manifest's camelCase, with the manifest's shorthands where a person would use them (a plain
location is a bare cluster name, a call without a port a bare host). Service files are streamed to disk
as they are generated, so memory stays modest; only small per-service summaries are kept.

Usage::

    python bench/fleetgen.py SIZE OUTDIR [--seed N] [--force]
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["SIZES", "FleetSize", "FleetStats", "generate", "main"]


@dataclass(frozen=True)
class FleetSize:
    """How big a fleet to generate. `seed` fixes the output; the rest are exact counts."""

    name: str
    clusters: int
    services: int
    calls: int
    regions: int
    shared_networks: int
    seed: int


SIZES: dict[str, FleetSize] = {
    "S": FleetSize("S", clusters=10, services=500, calls=5_000, regions=5, shared_networks=2, seed=5001),
    "L": FleetSize("L", clusters=100, services=5_000, calls=50_000, regions=10, shared_networks=5, seed=5002),
    "XL": FleetSize(
        "XL",
        clusters=300,
        services=20_000,
        calls=200_000,
        regions=12,
        shared_networks=10,
        seed=5003,
    ),
}


@dataclass
class FleetStats:
    """What `generate` wrote."""

    size: str
    seed: int
    clusters: int = 0
    networks: int = 0
    shared_networks: int = 0
    clusters_on_shared_networks: int = 0
    regions: int = 0
    services: int = 0
    namespaces: int = 0
    ports: int = 0
    calls: int = 0
    calls_with_port: int = 0
    external_calls: int = 0
    locations: int = 0
    services_by_tier: dict[str, int] = field(default_factory=dict)
    clusters_by_tier: dict[str, int] = field(default_factory=dict)
    location_kinds: dict[str, int] = field(default_factory=dict)
    bytes_on_disk: int = 0
    files: int = 0
    seconds: float = 0.0


# --------------------------------------------------------------------------------------------- shape

PUBLIC_DOMAIN = "example.com"
INTERNAL_DOMAIN = "internal.example.com"
TRUST_DOMAIN = "mesh.example.com"

TIERS = ["edge", "core", "data"]
MAY_CALL = {"edge": ["edge", "core"], "core": ["core", "data"], "data": ["data"]}
# Share of a caller tier's calls that go to each callee tier.
CALL_SHARE = {
    "edge": {"edge": 0.15, "core": 0.85},
    "core": {"core": 0.65, "data": 0.35},
    "data": {"data": 1.0},
}
CLUSTER_SHARE = {"edge": 0.2, "core": 0.45, "data": 0.35}
SERVICE_SHARE = {"edge": 0.15, "core": 0.55, "data": 0.30}
# Relative out-degree per tier: frontends fan out, data stores mostly call nothing or a little.
DEGREE_FACTOR = {"edge": 1.7, "core": 1.15, "data": 0.45}
ZIPF_EXPONENT = 1.0
MAX_CALLS_PER_SERVICE = 80

# Real GCP regions, roughly in order of how many clusters a fleet puts there.
REGIONS = [
    "us-east1",
    "us-central1",
    "europe-west1",
    "us-west1",
    "europe-west4",
    "asia-east1",
    "asia-northeast1",
    "us-east4",
    "europe-north1",
    "asia-southeast1",
    "australia-southeast1",
    "southamerica-east1",
    "northamerica-northeast1",
    "europe-west3",
]

BUSINESS_DOMAINS = [
    "account", "billing", "cart", "catalog", "checkout", "content", "coupon", "customer", "delivery",
    "discount", "document", "email", "feed", "fraud", "fulfil", "geo", "identity", "inventory", "invoice",
    "ledger", "listing", "loyalty", "media", "merchant", "message", "order", "partner", "payment",
    "payout", "pricing", "profile", "promo", "quote", "rating", "receipt", "refund", "report", "review",
    "reward", "route", "search", "session", "shipping", "subscription", "support", "tax", "ticket",
    "wallet",
]  # fmt: skip
COMPONENTS = {
    "edge": ["gateway", "web", "bff", "frontend", "api", "portal", "webhook", "graphql", "ui", "mobile"],
    "core": [
        "service", "worker", "engine", "scheduler", "processor", "manager", "resolver", "router",
        "validator", "indexer", "notifier", "aggregator", "planner", "matcher", "sync", "orchestrator",
    ],
    "data": ["db", "cache", "store", "vault", "index", "queue", "stream", "warehouse", "archive", "kv",
             "search-index", "blob"],
}  # fmt: skip
QUALIFIERS = [
    "admin", "batch", "bulk", "core", "global", "internal", "legacy", "live", "local", "main", "mobile2",
    "ops", "partner", "public", "realtime", "regional", "shadow", "stats", "tenant", "v2",
]  # fmt: skip

# Port presets per tier: (name, number, protocol) for the first port, and candidates for a second one.
FIRST_PORTS = {
    "edge": [(("http", 8080, "HTTP"), 8), (("grpc", 9090, "GRPC"), 1)],
    "core": [(("grpc", 9090, "GRPC"), 5), (("http", 8080, "HTTP"), 4)],
    "data": [
        (("tcp-postgres", 5432, "TCP"), 4),
        (("tcp-redis", 6379, "TCP"), 3),
        (("tcp-cql", 9042, "TCP"), 1),
        (("tcp-mysql", 3306, "TCP"), 1),
        (("grpc", 9090, "GRPC"), 2),
    ],
}
SECOND_PORTS = [
    ("http-admin", 8081, "HTTP"),
    ("grpc", 9090, "GRPC"),
    ("http", 8080, "HTTP"),
    ("tcp", 7000, "TCP"),
]
SECOND_PORT_SHARE = {"edge": 0.25, "core": 0.35, "data": 0.35}

SIZE_PRESETS = [("small", 5), ("medium", 4), ("large", 2)]
HOSTED_WEIGHT = {"small": 1.0, "medium": 2.0, "large": 3.0, None: 3.0}  # None: explicit node pools


def _weighted(rng: random.Random, options: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options], k=1)[0]


def _sample_distinct(
    rng: random.Random, population: list[Any], cum_weights: list[float], k: int, exclude: Any = None
) -> list[Any]:
    """k distinct items drawn by weight (without replacement), never `exclude`; order of draw kept."""
    picked: dict[Any, None] = {}
    tries = 0
    limit = 30 * k + 50
    while len(picked) < k and tries < limit:
        need = k - len(picked)
        batch = rng.choices(population, cum_weights=cum_weights, k=need + need // 2 + 1)
        tries += len(batch)
        for item in batch:
            if item != exclude and item not in picked:
                picked[item] = None
                if len(picked) == k:
                    break
    if len(picked) < k:  # a heavy head exhausted: fill from the rest, uniformly
        rest = [item for item in population if item != exclude and item not in picked]
        for item in rng.sample(rest, k - len(picked)):
            picked[item] = None
    return list(picked)


def _split(total: int, shares: dict[str, float], minimum: int) -> dict[str, int]:
    """Split `total` by `shares` into integers summing to `total`, each at least `minimum`."""
    counts = {key: max(minimum, int(total * share)) for key, share in shares.items()}
    keys = list(shares)
    i = 0
    while sum(counts.values()) < total:
        counts[keys[i % len(keys)]] += 1
        i += 1
    while sum(counts.values()) > total:
        key = max(keys, key=lambda k: counts[k])
        counts[key] -= 1
    return counts


# yaml.safe_dump's output, written by libyaml's emitter when PyYAML has it (5x faster; the bytes are the
# same for these documents, checked file by file on S and XL), else by yaml.safe_dump itself.
_DUMPER = yaml.CSafeDumper if getattr(yaml, "__with_libyaml__", False) else yaml.SafeDumper


def _dump(data: Any, path: Path) -> int:
    text = yaml.dump(
        data,
        Dumper=_DUMPER,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=120,
    )
    data_bytes = text.encode("utf-8")
    path.write_bytes(data_bytes)
    return len(data_bytes)


# ------------------------------------------------------------------------------------------ clusters


@dataclass
class _Cluster:
    name: str
    tier: str
    region: str
    size: str | None  # None: explicit node pools
    network: str = ""
    internal: str | None = None
    external: str = ""


# Approved destinations outside the mesh (outside both mesh domains and every cluster range): one of
# each shape — through the egress gateway, TLS originated by the sidecar, a private database on a
# fixed range, Google APIs for every workload on Private Google Access.
EXTERNALS: list[dict[str, Any]] = [
    {"name": "card-processor", "hosts": ["api.cards.example.net"], "ports": [{"number": 443, "protocol": "TLS"}],
     "tiers": ["core"], "egressGateway": True},
    {"name": "mail-api", "hosts": ["api.mail.example.org"], "ports": [{"number": 80, "protocol": "HTTP"}],
     "tiers": ["edge", "core"], "originateTls": True},
    {"name": "orders-db", "hosts": ["orders-db.sql.example.internal"], "addresses": ["192.168.0.0/24"],
     "ports": [{"number": 5432, "protocol": "TCP"}], "tiers": ["core", "data"]},
    {"name": "google-apis", "hosts": ["*.googleapis.com"], "addresses": ["199.36.153.8/30"],
     "ports": [{"number": 443, "protocol": "TLS"}], "allWorkloads": True},
]
# Share of a tier's services calling one (more) external destination besides Google APIs.
EXTERNAL_CALL_SHARE = 0.1


def _external_call(rng: random.Random, tier: str) -> Any | None:
    """A call to an external destination the tier may use, for about EXTERNAL_CALL_SHARE of services.
    Drawn from its own generator, so the fleet's mesh shape is the same with or without externals."""
    if rng.random() >= EXTERNAL_CALL_SHARE:
        return None
    allowed = [e for e in EXTERNALS if tier in e.get("tiers", ())]
    if not allowed:
        return None
    external = rng.choice(allowed)
    return external["hosts"][0]


def _ranges(i: int) -> dict[str, str]:
    """Cluster i's address plan: unique fleet-wide (up to 512 clusters), so shared VPCs never overlap."""
    return {
        "nodes": f"10.{i // 16}.{(i % 16) * 16}.0/20",  # 10.0.0.0/11
        "pods": f"10.{64 + i // 8}.{(i % 8) * 32}.0/19",  # 10.64.0.0/10
        "services": f"10.{128 + i // 64}.{(i % 64) * 4}.0/22",  # 10.128.0.0/12
        "controlPlane": f"172.16.{i // 16}.{(i % 16) * 16}/28",
    }


def _clusters(
    rng: random.Random, spec: FleetSize, stats: FleetStats
) -> tuple[dict[str, Any], list[_Cluster]]:
    if spec.regions > len(REGIONS):
        raise ValueError(f"at most {len(REGIONS)} regions")
    regions = REGIONS[: spec.regions]
    region_weights = [1.0 / (rank + 1) ** 0.6 for rank in range(len(regions))]
    per_tier = _split(spec.clusters, CLUSTER_SHARE, minimum=2)

    clusters: list[_Cluster] = []
    for tier in TIERS:
        m = per_tier[tier]
        # The first clusters of a tier each go to a different region, so the tier spans regions.
        spread = _sample_distinct(
            rng, regions, list(itertools.accumulate(region_weights)), min(m, len(regions))
        )
        rest = rng.choices(regions, weights=region_weights, k=m - len(spread))
        numbering: dict[str, int] = {}
        for region in sorted(spread + rest, key=regions.index):
            numbering[region] = numbering.get(region, 0) + 1
            size = _weighted(rng, [(s, w) for s, w in SIZE_PRESETS] + [(None, 1)])
            clusters.append(_Cluster(f"gke-{tier}-{region}-{numbering[region]:02d}", tier, region, size))

    # Shared flat networks: about half the clusters, in groups of several; the rest isolated.
    networks: dict[str, Any] = {}
    shared_count = min(spec.shared_networks, len(clusters) // 2)
    order = list(range(len(clusters)))
    rng.shuffle(order)
    on_shared = max(2 * shared_count, round(len(clusters) * 0.55)) if shared_count else 0
    group_weights = [rng.uniform(0.6, 1.4) for _ in range(shared_count)]
    groups: list[list[int]] = [[] for _ in range(shared_count)]
    for j, index in enumerate(order[:on_shared]):
        # two per group first, then by weight, so every shared network has several clusters
        g = j // 2 if j < 2 * shared_count else rng.choices(range(shared_count), weights=group_weights)[0]
        groups[g].append(index)
    for g, members in enumerate(groups):
        net = f"shared-vpc-{g + 1:02d}"
        networks[net] = {
            "project": f"net-host-{g + 1:02d}",
            "description": f"Shared flat VPC {g + 1}",
        }
        for index in sorted(members):
            clusters[index].network = net
            clusters[index].internal = _ranges(index)["nodes"].replace(".0/20", ".100")
    isolated = 0
    for cluster in clusters:
        if not cluster.network:
            isolated += 1
            net = f"vpc-{cluster.name}"
            networks[net] = {"project": f"net-iso-{isolated:03d}"}
            cluster.network = net
    for i, cluster in enumerate(clusters):
        cluster.external = f"100.{64 + i // 64_000}.{(i % 64_000) // 250}.{i % 250 + 2}"

    def cluster_doc(i: int, c: _Cluster) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": c.name,
            "project": f"{c.tier}-prod-{i + 1:03d}",
            "region": c.region,
            "zones": [f"{c.region}-b"],
            "network": c.network,
            "tier": c.tier,
        }
        if c.size is not None:
            doc["size"] = c.size
        else:
            doc["nodePools"] = [
                {"name": "default", "machineType": "e2-standard-8", "minNodes": 1, "maxNodes": 10},
                {
                    "name": "spot",
                    "machineType": "e2-standard-8",
                    "minNodes": 0,
                    "maxNodes": 20,
                    "spot": True,
                },
            ]
        doc["ipRanges"] = _ranges(i)
        east_west = (
            {"internal": c.internal, "external": c.external} if c.internal else {"external": c.external}
        )
        doc["eastWest"] = east_west
        return doc

    fleet = {
        "domains": [PUBLIC_DOMAIN, INTERNAL_DOMAIN],
        "trustDomain": TRUST_DOMAIN,
        "meshId": "fleet-mesh",
        "networks": networks,
        "tiers": {tier: {"mayCall": list(MAY_CALL[tier])} for tier in TIERS},
        "clusters": [cluster_doc(i, c) for i, c in enumerate(clusters)],
        "externals": EXTERNALS,
    }
    stats.clusters = len(clusters)
    stats.networks = len(networks)
    stats.shared_networks = shared_count
    stats.clusters_on_shared_networks = on_shared
    stats.regions = len({c.region for c in clusters})
    stats.clusters_by_tier = {tier: per_tier[tier] for tier in TIERS}
    return fleet, clusters


# ------------------------------------------------------------------------------------------ services


@dataclass
class _Service:
    name: str
    tier: str
    domain_word: str
    host: str = ""
    namespace: str = ""
    ports: list[tuple[str, int, str]] = field(default_factory=list)


def _names(rng: random.Random, tier: str, n: int) -> list[tuple[str, str]]:
    """n unique (name, business-domain word) for a tier: `<domain>-<component>`, then 3-part names."""
    comps = COMPONENTS[tier]
    two = [(f"{d}-{c}", d) for d in BUSINESS_DOMAINS for c in comps]
    rng.shuffle(two)
    if n <= len(two):
        return two[:n]
    three = [(f"{d}-{q}-{c}", d) for d in BUSINESS_DOMAINS for q in QUALIFIERS for c in comps]
    if n > len(two) + len(three):
        raise ValueError(f"too many {tier} services ({n}) for the name lists")
    return two + rng.sample(three, n - len(two))


def _services(rng: random.Random, spec: FleetSize, stats: FleetStats) -> list[_Service]:
    per_tier = _split(spec.services, SERVICE_SHARE, minimum=3)
    services: list[_Service] = []
    namespaces_used: dict[str, int] = {}
    for tier in TIERS:
        batch = [_Service(name, tier, word) for name, word in _names(rng, tier, per_tier[tier])]
        for s in batch:
            domain = PUBLIC_DOMAIN if tier == "edge" else INTERNAL_DOMAIN
            s.host = f"{s.name}.svc.{domain}"
            first = _weighted(rng, FIRST_PORTS[tier])
            s.ports = [first]
            if rng.random() < SECOND_PORT_SHARE[tier]:
                second = rng.choice([p for p in SECOND_PORTS if p[0] != first[0] and p[1] != first[1]])
                s.ports.append(second)
        services.extend(batch)
    services.sort(key=lambda s: s.name)
    # Namespaces: one per team, a team owning a few services of one business domain, often across
    # tiers (checkout-web, checkout-engine, checkout-db); about three services per namespace.
    by_domain: dict[str, list[_Service]] = {}
    for s in services:
        by_domain.setdefault(s.domain_word, []).append(s)
    for word, members in by_domain.items():
        members = rng.sample(members, len(members))
        i = 0
        while i < len(members):
            chunk = rng.choice([1, 2, 3, 3, 4, 4, 5, 6])
            namespaces_used[word] = namespaces_used.get(word, 0) + 1
            k = namespaces_used[word]
            for s in members[i : i + chunk]:
                s.namespace = word if k == 1 else f"{word}-{k}"
            i += chunk
    stats.services = len(services)
    stats.services_by_tier = dict(per_tier)
    stats.namespaces = sum(namespaces_used.values())
    stats.ports = sum(len(s.ports) for s in services)
    return services


# ----------------------------------------------------------------------------------------- locations


def _locations(
    rng: random.Random, services: list[_Service], clusters: list[_Cluster], stats: FleetStats
) -> dict[str, list[Any]]:
    by_tier = {tier: [i for i, c in enumerate(clusters) if c.tier == tier] for tier in TIERS}
    cum = {
        tier: list(itertools.accumulate(HOSTED_WEIGHT[clusters[i].size] for i in members))
        for tier, members in by_tier.items()
    }
    kinds = {
        "single": 0,
        "active-active-2": 0,
        "active-active-3": 0,
        "primary-standby": 0,
        "weighted": 0,
    }
    locations: dict[str, list[Any]] = {}
    for s in services:
        pool = by_tier[s.tier]
        roll = rng.random()
        if roll < 0.05:
            # a primary with one or two standbys, each in a region of its own
            primary = _sample_distinct(rng, pool, cum[s.tier], 1)[0]
            want = 2 if rng.random() < 0.2 else 1
            regions_taken = [clusters[primary].region]
            standbys: list[int] = []
            for i in rng.sample(pool, len(pool)):
                if len(standbys) < want and clusters[i].region not in regions_taken:
                    standbys.append(i)
                    regions_taken.append(clusters[i].region)
            if not standbys:  # the tier spans one region only: a standby in the same region
                standbys = [i for i in pool if i != primary][:1]
            entry: list[Any] = [{"cluster": clusters[primary].name, "role": "primary"}]
            entry += [{"cluster": clusters[i].name, "role": "standby"} for i in standbys]
            kinds["primary-standby"] += 1
        elif roll < 0.08:
            split = _weighted(
                rng, [((80, 20), 5), ((90, 10), 3), ((70, 30), 2), ((50, 50), 1), ((60, 30, 10), 1)]
            )
            if len(split) > len(pool):
                split = (80, 20)
            chosen = _sample_distinct(rng, pool, cum[s.tier], len(split))
            entry = [{"cluster": clusters[i].name, "weight": w} for i, w in zip(chosen, split, strict=True)]
            kinds["weighted"] += 1
        else:
            k = 3 if roll < 0.18 else (2 if roll < 0.40 else 1)
            k = min(k, len(pool))
            chosen = _sample_distinct(rng, pool, cum[s.tier], k)
            entry = [clusters[i].name for i in chosen]
            kinds["single" if k == 1 else f"active-active-{k}"] += 1
        locations[s.name] = entry
        stats.locations += len(entry)
    stats.location_kinds = kinds
    return locations


# ------------------------------------------------------------------------------------------ calls


def _degrees(rng: random.Random, services: list[_Service], caps: list[int], total: int) -> list[int]:
    """Calls per service: log-normal, scaled per tier, capped, summing to exactly `total`."""
    raw = [rng.lognormvariate(0.0, 0.9) * DEGREE_FACTOR[s.tier] for s in services]
    if sum(caps) < total:
        raise ValueError(f"cannot place {total} calls: at most {sum(caps)} fit the tier policy")
    scale = total / sum(raw)
    degrees = [min(cap, round(r * scale)) for r, cap in zip(raw, caps, strict=True)]
    indices = list(range(len(services)))
    cum_raw = list(itertools.accumulate(raw))
    diff = total - sum(degrees)
    while diff != 0:
        for i in rng.choices(indices, cum_weights=cum_raw, k=min(abs(diff), 1000) + 16):
            if diff > 0 and degrees[i] < caps[i]:
                degrees[i] += 1
                diff -= 1
            elif diff < 0 and degrees[i] > 0:
                degrees[i] -= 1
                diff += 1
            if diff == 0:
                break
    return degrees


def _call_pools(rng: random.Random, services: list[_Service]) -> dict[str, tuple[list[int], list[float]]]:
    """Per caller tier: callable service indices and cumulative Zipf-like popularity weights."""
    members = {tier: [i for i, s in enumerate(services) if s.tier == tier] for tier in TIERS}
    popularity: dict[int, float] = {}
    for tier in TIERS:
        ranked = rng.sample(members[tier], len(members[tier]))
        norm = sum(1.0 / (r + 1) ** ZIPF_EXPONENT for r in range(len(ranked)))
        for r, i in enumerate(ranked):
            popularity[i] = 1.0 / (r + 1) ** ZIPF_EXPONENT / norm
    pools = {}
    for tier in TIERS:
        pool = [i for callee in MAY_CALL[tier] for i in members[callee]]
        weights = [popularity[i] * CALL_SHARE[tier][services[i].tier] for i in pool]
        pools[tier] = (pool, list(itertools.accumulate(weights)))
    return pools


_TIMEOUTS = [("500ms", 2), ("1s", 3), ("2s", 4), ("5s", 2), ("30s", 1)]


def _traffic(rng: random.Random) -> dict[str, Any] | None:
    roll = rng.random()
    if roll >= 0.25:
        return None
    traffic: dict[str, Any] = {"timeout": _weighted(rng, _TIMEOUTS)}
    if roll < 0.15:
        traffic["retries"] = rng.choice([0, 1, 2, 2, 3])
    elif roll < 0.18:
        traffic["retries"] = {
            "attempts": 3,
            "perTryTimeout": "250ms",
            "retryOn": "5xx,connect-failure",
        }
    if roll < 0.04:
        traffic["outlier"] = {
            "consecutiveGatewayErrors": 3,
            "interval": "10s",
            "baseEjectionTime": "1m",
        }
    return traffic


# ------------------------------------------------------------------------------------------- driver


def generate(
    size: str | FleetSize, outdir: str | Path, *, seed: int | None = None, force: bool = False
) -> FleetStats:
    """Write the fleet `size` ("S", "L", "XL" or a `FleetSize`) to `outdir` and return what it wrote.

    `seed` overrides the size's fixed seed. `outdir` must be empty or missing, unless `force`: then
    an existing fleet.yaml, locations.yaml and services/ are replaced (nothing else is touched).
    """
    started = time.perf_counter()
    spec = SIZES[size] if isinstance(size, str) else size
    seed = spec.seed if seed is None else seed
    out = Path(outdir)
    services_dir = out / "services"
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out} is not empty (use force=True / --force to replace a fleet)")
        if services_dir.exists():
            shutil.rmtree(services_dir)
        for name in ("fleet.yaml", "locations.yaml"):
            (out / name).unlink(missing_ok=True)
    services_dir.mkdir(parents=True, exist_ok=True)

    rng = random.Random(seed)
    stats = FleetStats(size=spec.name, seed=seed)

    fleet, clusters = _clusters(rng, spec, stats)
    stats.bytes_on_disk += _dump(fleet, out / "fleet.yaml")
    services = _services(rng, spec, stats)
    locations = _locations(rng, services, clusters, stats)
    stats.bytes_on_disk += _dump(locations, out / "locations.yaml")
    del locations

    pools = _call_pools(rng, services)
    caps = [min(MAX_CALLS_PER_SERVICE, (len(pools[s.tier][0]) - 1) // 3) for s in services]
    degrees = _degrees(rng, services, caps, spec.calls)

    external_rng = random.Random(seed * 7919 + 1)
    for i, s in enumerate(services):
        pool, cum = pools[s.tier]
        callees = _sample_distinct(rng, pool, cum, degrees[i], exclude=i)
        calls: list[Any] = []
        for j in callees:
            callee = services[j]
            many = len(callee.ports) > 1
            if rng.random() < (0.5 if many else 0.05):
                calls.append({"host": callee.host, "port": rng.choice(callee.ports)[1]})
                stats.calls_with_port += 1
            else:
                calls.append(callee.host)
        external = _external_call(external_rng, s.tier)
        if external is not None:
            calls.append(external)
            stats.external_calls += 1
        doc: dict[str, Any] = {
            "name": s.name,
            "host": s.host,
            "namespace": s.namespace,
            "serviceAccount": s.name,
            "tier": s.tier,
            "owner": f"team-{s.namespace}",
            "ports": [{"name": n, "number": p, "protocol": proto} for n, p, proto in s.ports],
        }
        if calls:
            doc["calls"] = calls
        traffic = _traffic(rng)
        if traffic:
            doc["traffic"] = traffic
        if s.tier == "edge" and rng.random() < 0.6:
            doc["ingress"] = True
        stats.bytes_on_disk += _dump(doc, services_dir / f"{s.name}.yaml")
        stats.calls += len(calls) - (external is not None)

    stats.files = 2 + len(services)
    stats.seconds = round(time.perf_counter() - started, 2)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a deterministic synthetic fleet manifest.")
    parser.add_argument("size", choices=sorted(SIZES), help="fleet size")
    parser.add_argument("outdir", type=Path, help="directory to write the manifest to")
    parser.add_argument("--seed", type=int, default=None, help="override the size's fixed seed")
    parser.add_argument("--force", action="store_true", help="replace a fleet already in OUTDIR")
    args = parser.parse_args(argv)
    try:
        stats = generate(args.size, args.outdir, seed=args.seed, force=args.force)
    except (FileExistsError, ValueError) as err:
        print(f"fleetgen: {err}", file=sys.stderr)
        return 2
    print(
        f"{stats.size} (seed {stats.seed}): {stats.clusters} clusters in {stats.regions} regions, "
        f"{stats.networks} networks ({stats.shared_networks} shared, {stats.clusters_on_shared_networks} "
        f"clusters on them), {stats.services} services in {stats.namespaces} namespaces, "
        f"{stats.calls} calls ({stats.calls_with_port} with a port), {stats.external_calls} external calls, "
        f"{stats.locations} locations; "
        f"{stats.files} files, {stats.bytes_on_disk:,} bytes, {stats.seconds}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
