"""The manifest's shape: what each file may say, field by field.

Three owners, three documents: the platform owns the fleet (`fleet.yaml`) and where services run
(`locations.yaml`); each service team owns one file per service (`services/<name>.yaml`). This module
checks each document on its own (types, formats, unknown fields); whatever needs two documents at once
(a call to a host declared elsewhere, a location on a cluster) is checked in `rules.py`.

Field names are camelCase in YAML, snake_case in Python. Every model forbids unknown fields, so a typo
is an error rather than a silently ignored setting. `mesh schema` prints the JSON Schema of these models.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

# Kubernetes object names (RFC 1123 label): namespaces, service names, port names.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# GKE cluster names: a letter first, at most 40 characters.
CLUSTER_NAME = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$"
GCP_PROJECT = r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$"
GCP_REGION = r"^[a-z]+-[a-z]+[0-9]+$"
DURATION = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$"
# A fully qualified lower-case DNS name: labels of ≤ 63 characters, at least two (≤ 253 in all,
# checked as the field's max_length). Checked by pydantic's regex engine: no Python call per host.
DNS_NAME = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"

DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=63)]
# Kubernetes label values: empty, or alphanumerics with - _ . inside, at most 63 characters.
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LabelValue = Annotated[str, StringConstraints(pattern=LABEL_VALUE, max_length=63)]
# Ports the sidecar and gateways use themselves; a service on one of them would be shadowed.
ISTIO_PORTS = frozenset({15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090})
# Retry conditions Istio accepts in `retryOn` (Envoy's HTTP and gRPC conditions).
RETRY_ON = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited",
    "retriable-4xx", "refused-stream", "retriable-status-codes", "retriable-headers", "http3-post-connect-failure",
    "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
})
ClusterName = Annotated[str, StringConstraints(pattern=CLUSTER_NAME)]
Duration = Annotated[str, StringConstraints(pattern=DURATION)]


def _check_cidr(value: str) -> str:
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 CIDR block ({exc})") from None
    return value


def _check_ipv4(value: str) -> str:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None
    return value


DnsName = Annotated[str, StringConstraints(pattern=DNS_NAME, max_length=253)]
IPv4 = Annotated[str, AfterValidator(_check_ipv4)]
Cidr = Annotated[str, AfterValidator(_check_cidr)]


def _duration_ms(value: str) -> float:
    match = re.match(DURATION, value)
    assert match, value
    unit = match.group(2)
    number = float(value[: -len(unit)])
    return number * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[unit]


def _at_least_1ms(value: str) -> str:
    # Istio's CRDs reject durations under 1ms (`duration(self) >= duration('1ms')`).
    if _duration_ms(value) < 1:
        raise ValueError(f"{value!r} is shorter than 1ms")
    return value


PositiveDuration = Annotated[Duration, AfterValidator(_at_least_1ms)]


class Strict(BaseModel):
    """Base for every manifest model: unknown fields are errors; camelCase in YAML."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        str_strip_whitespace=False,
    )


# --------------------------------------------------------------------------------------------- fleet


class Network(Strict):
    """A VPC. Clusters on the same network reach each other's east-west gateways on internal addresses."""

    project: Annotated[str, StringConstraints(pattern=GCP_PROJECT)] = Field(
        description="GCP project that owns the VPC (the host project of a Shared VPC)."
    )
    description: str | None = Field(default=None, description="Free text for humans.")


class Tier(Strict):
    """An isolation tier. Services may only call services in the tiers their tier lists."""

    may_call: list[str] = Field(
        default_factory=list, description="Tiers whose services this tier's services may call."
    )


class EastWestAddresses(Strict):
    """Pinned east-west gateway addresses. The Pulumi program reserves these as static IPs."""

    internal: IPv4 | None = Field(
        default=None,
        description="Internal load balancer IP, used by callers on the same network.",
    )
    external: IPv4 | None = Field(
        default=None,
        description="External load balancer IP, used by callers on other networks.",
    )


class IpRanges(Strict):
    """The cluster's address plan (VPC-native). Needed by the Pulumi program, not by `mesh render`."""

    nodes: Cidr = Field(description="Primary range of the cluster's subnet (nodes, internal gateway IP).")
    pods: Cidr = Field(description="Secondary range for pods.")
    services: Cidr = Field(description="Secondary range for Kubernetes Services.")
    control_plane: Cidr = Field(description="The control plane's private /28.")


class NodePool(Strict):
    """An autoscaled GKE node pool."""

    name: DnsLabel = Field(description="Node pool name, unique within the cluster.")
    machine_type: str = Field(description="GCE machine type, e.g. e2-standard-4.")
    min_nodes: int = Field(ge=0, le=1000, description="Autoscaling minimum per zone.")
    max_nodes: int = Field(ge=1, le=1000, description="Autoscaling maximum per zone.")
    spot: bool = Field(default=False, description="Use Spot VMs (cheaper, preemptible).")

    @model_validator(mode="after")
    def _min_not_above_max(self) -> NodePool:
        if self.min_nodes > self.max_nodes:
            raise ValueError(f"minNodes ({self.min_nodes}) is above maxNodes ({self.max_nodes})")
        return self


class Cluster(Strict):
    """A GKE cluster with its own Istio control plane."""

    name: ClusterName = Field(description="GKE cluster name; also the cluster's Istio network name.")
    project: Annotated[str, StringConstraints(pattern=GCP_PROJECT)] = Field(
        description="GCP project the cluster lives in."
    )
    region: Annotated[str, StringConstraints(pattern=GCP_REGION)] = Field(
        description="GCP region, e.g. us-east1. Also the locality region of its endpoints."
    )
    zones: list[str] = Field(
        default_factory=list,
        description="Zones for the nodes (default: GKE's choice in the region). "
        "A single zone makes the locality region/zone.",
    )
    network: str = Field(description="Name of a network declared under `networks`.")
    tier: str = Field(description="Name of a tier declared under `tiers`.")
    size: Literal["small", "medium", "large"] | None = Field(
        default=None,
        description="Node pool preset. Give either `size` or `nodePools` (default: small).",
    )
    node_pools: list[NodePool] | None = Field(
        default=None, description="Explicit node pools, instead of a `size` preset."
    )
    ip_ranges: IpRanges | None = Field(
        default=None,
        description="Subnet, pod, service and control-plane ranges; required by the Pulumi program.",
    )
    east_west: EastWestAddresses | None = Field(
        default=None,
        description="Pinned east-west gateway addresses. Unpinned addresses are reserved by the "
        "Pulumi program; `mesh render` writes a marked placeholder for them.",
    )

    @model_validator(mode="after")
    def _size_xor_node_pools(self) -> Cluster:
        if self.size is not None and self.node_pools is not None:
            raise ValueError("give either size or nodePools, not both")
        return self


class IngressGateway(Strict):
    """The north-south ingress gateway whose identity may call services marked `ingress: true`."""

    namespace: DnsLabel = Field(default="istio-ingress", description="Its namespace.")
    service_account: DnsLabel = Field(
        default="istio-ingressgateway", description="Its Kubernetes service account."
    )


class Fleet(Strict):
    """The platform's file: domains, trust, networks, tiers and clusters."""

    domains: list[DnsName] = Field(
        min_length=1, description="Public DNS suffixes that service hosts must be named under."
    )
    trust_domain: DnsName = Field(
        description="The SPIFFE trust domain shared by every cluster (one root CA)."
    )
    mesh_id: DnsLabel = Field(
        default="fleet-mesh", description="Istio meshID, the same in every cluster."
    )
    ingress_gateway: IngressGateway = Field(
        default_factory=IngressGateway,
        description="Identity of the ingress gateway, allowed to call `ingress: true` services.",
    )
    networks: dict[str, Network] = Field(description="VPCs by name.")
    tiers: dict[str, Tier] = Field(description="Isolation tiers by name.")
    clusters: list[Cluster] = Field(description="The GKE clusters of the fleet.")


# ------------------------------------------------------------------------------------------ services


class Port(Strict):
    """A port the service serves. Number and name are the same in every cluster."""

    name: Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=62)] = Field(
        description="Port name, e.g. http. Keys the east-west endpoint port map."
    )
    number: int = Field(ge=1, le=65535, description="Port number callers dial.")

    @model_validator(mode="after")
    def _not_an_istio_port(self) -> Port:
        if self.number in ISTIO_PORTS:
            raise ValueError(f"port {self.number} is used by Istio's proxies itself; choose another")
        return self
    protocol: Literal["HTTP", "HTTP2", "GRPC", "TCP", "TLS"] = Field(
        description="Application protocol. HTTP, HTTP2 and GRPC get HTTP routing features."
    )


def _call_shorthand(value: Any) -> Any:
    return {"host": value} if isinstance(value, str) else value


class Call(Strict):
    """A host this service calls; without a port, every port of that host."""

    host: DnsName = Field(description="Public host of the called service.")
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Only this port (default: all its ports)."
    )


class Retries(Strict):
    attempts: int = Field(ge=0, le=10, description="Retry attempts (0 disables retries).")
    per_try_timeout: PositiveDuration | None = Field(
        default=None, description="Timeout of each attempt, e.g. 500ms."
    )
    retry_on: str | None = Field(
        default=None,
        description="Envoy retry conditions (default Istio's connect-failure,refused-stream,"
        "unavailable,cancelled); HTTP status codes allowed too.",
    )

    @model_validator(mode="after")
    def _known_conditions(self) -> Retries:
        if self.retry_on is not None:
            unknown = [c for c in self.retry_on.split(",") if c.strip() not in RETRY_ON and not c.strip().isdigit()]
            if unknown:
                raise ValueError(f"unknown retryOn condition(s) {', '.join(map(repr, unknown))}; "
                                 f"known: {', '.join(sorted(RETRY_ON))}, or HTTP status codes")
        return self


def _retries_shorthand(value: Any) -> Any:
    return {"attempts": value} if isinstance(value, int) and not isinstance(value, bool) else value


class Outlier(Strict):
    """When a cluster's endpoint is ejected. One remote endpoint stands for a whole cluster."""

    consecutive_gateway_errors: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Consecutive 502/503/504 or connect failures before ejection. Application "
        "500s do not count, so a bad request never ejects a cluster.",
    )
    interval: PositiveDuration = Field(default="5s", description="Ejection sweep interval.")
    base_ejection_time: PositiveDuration = Field(default="30s", description="Minimum ejection time.")
    min_health_percent: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Envoy panic threshold. 0 keeps not-ready endpoints out of rotation by "
        "health status alone; above 0 Istio 1.31 also drops them from EDS.",
    )


class Traffic(Strict):
    """Optional traffic policy for callers of this service."""

    timeout: PositiveDuration | None = Field(default=None, description="Request timeout, e.g. 2s.")
    retries: Annotated[Retries | None, BeforeValidator(_retries_shorthand)] = Field(
        default=None, description="Retries: a number of attempts, or the full form."
    )
    outlier: Outlier | None = Field(default=None, description="Outlier-detection thresholds.")


class Service(Strict):
    """A service team's file: the service's public name, its ports and the hosts it calls."""

    name: DnsLabel = Field(description="Service name, unique in the fleet; keys locations.yaml.")
    host: DnsName = Field(description="Public host, under one of the fleet's domains.")
    namespace: DnsLabel = Field(description="Kubernetes namespace the service runs in.")
    service_account: DnsLabel = Field(description="Kubernetes service account of its pods.")
    tier: str = Field(description="Tier of the service; must match its clusters' tier.")
    ports: list[Port] = Field(min_length=1, description="Ports it serves.")
    calls: list[Annotated[Call, BeforeValidator(_call_shorthand)]] = Field(
        default_factory=list, description="Hosts it calls: a host, or {host, port}."
    )
    traffic: Traffic | None = Field(default=None, description="Timeouts, retries, outlier policy.")
    selector: dict[DnsLabel, LabelValue] | None = Field(
        default=None, description="Pod labels that select its workloads (default app: <name>)."
    )
    ingress: bool = Field(
        default=False, description="Reachable from the fleet's north-south ingress gateway."
    )
    owner: str | None = Field(default=None, description="Owning team, for humans.")

    @property
    def workload_labels(self) -> dict[str, str]:
        return dict(self.selector) if self.selector else {"app": self.name}


# ----------------------------------------------------------------------------------------- locations


def _location_shorthand(value: Any) -> Any:
    return {"cluster": value} if isinstance(value, str) else value


class Location(Strict):
    """A cluster running the service: active (default), primary / standby, or weighted."""

    cluster: str = Field(description="Name of a cluster in fleet.yaml.")
    role: Literal["primary", "standby"] | None = Field(
        default=None,
        description="primary / standby: standbys take traffic only when no primary is healthy.",
    )
    weight: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Share of traffic in percent; the weights of one service sum to 100.",
    )


LocationEntry = Annotated[Location, BeforeValidator(_location_shorthand)]


LocationsFile = dict[DnsLabel, list[LocationEntry]]
"""The platform's file of where services run: service name → its locations."""


class Bundle(Fleet):
    """A whole manifest in one file: the fleet, plus `services` and `locations`."""

    services: list[Service] = Field(default_factory=list, description="Every service.")
    locations: LocationsFile = Field(
        default_factory=dict, description="Where each service runs."
    )
