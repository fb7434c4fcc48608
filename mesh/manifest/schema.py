"""The manifest's shape: what each file may say, field by field.

Three owners, three documents: the platform owns the fleet (`fleet.yaml`) and where services run
(`locations.yaml`); each service team owns one file per service (`services/<name>.yaml`). This module
checks each document on its own (types, formats, unknown fields); whatever needs two documents at once
(a call to a host declared elsewhere, a location on a cluster) is checked in `rules.py`.

Field names are camelCase in YAML, snake_case in Python. Every model forbids unknown fields, so a typo
is an error rather than a silently ignored setting. The loader validates strictly (`VALIDATE`): a
number is a number (not `"8080"` or `8080.0`), a boolean is `true` or `false`, and only the camelCase
names are accepted. `mesh schema` prints the JSON Schema of these models; it accepts the same forms,
short forms included (each `BeforeValidator` names the input it accepts), and every format check is
a pattern there too.
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
    TypeAdapter,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue

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
# Ports the sidecar and gateways use themselves (Istio reserves the whole range); a service on one
# of them would be shadowed.
ISTIO_PORTS = range(15000, 15091)
# Retry conditions Istio accepts in `retryOn` (Envoy's HTTP and gRPC conditions).
RETRY_ON = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited",
    "retriable-4xx", "refused-stream", "retriable-status-codes", "retriable-headers", "http3-post-connect-failure",
    "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
})
_CONDITION = "(" + "|".join(re.escape(c) for c in sorted(RETRY_ON)) + "|[1-5][0-9][0-9])"
# Conditions separated by commas; HTTP status codes 100-599 too.
RETRY_ON_PATTERN = rf"^ *{_CONDITION} *(, *{_CONDITION} *)*$"
ClusterName = Annotated[str, StringConstraints(pattern=CLUSTER_NAME)]
Duration = Annotated[str, StringConstraints(pattern=DURATION)]
# Durations Istio rejects (under 1ms): zero in any unit, a fraction of a millisecond, or a fraction of
# a second, minute or hour that starts with that many zeros (0.0009s, 0.00001m).
SUB_MILLISECOND = r"^(0+(\.[0-9]+)?ms|0+(\.0*)?(s|m|h)|0+\.000[0-9]*s|0+\.0000[0-9]*m|0+\.000000[0-9]*h)$"
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4 = rf"^({_OCTET}\.){{3}}{_OCTET}$"
CIDR = rf"^({_OCTET}\.){{3}}{_OCTET}/(3[0-2]|[12]?[0-9])$"
IPV4_OR_CIDR = rf"^({_OCTET}\.){{3}}{_OCTET}(/(3[0-2]|[12]?[0-9]))?$"


def _check_cidr(value: str) -> str:
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            network = ipaddress.IPv4Network(value, strict=False)
            raise ValueError(f"{value!r} is not an IPv4 CIDR block: it has host bits set (did you mean "
                             f"{network}?)") from None
        raise ValueError(f"{value!r} is not an IPv4 CIDR block") from None
    return value


def _check_ipv4(value: str) -> str:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None
    return value


DnsName = Annotated[str, StringConstraints(pattern=DNS_NAME, max_length=253)]
IPv4 = Annotated[str, StringConstraints(pattern=IPV4), AfterValidator(_check_ipv4)]
# The host bits of a CIDR block must be zero: the one check here JSON Schema cannot state.
Cidr = Annotated[str, StringConstraints(pattern=CIDR), AfterValidator(_check_cidr)]
# An address or a CIDR block: a bare address means its /32.
IPv4OrCidr = Annotated[str, StringConstraints(pattern=IPV4_OR_CIDR),
                       AfterValidator(lambda v: _check_cidr(v) if "/" in v else _check_ipv4(v))]


def _duration_ms(value: str) -> float:
    match = re.match(DURATION, value)
    assert match, value
    unit = match.group(2)
    number = float(value[: -len(unit)])
    return number * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[unit]


def _at_least_1ms(value: str) -> str:
    # Istio's CRDs reject durations under 1ms (`duration(self) >= duration('1ms')`). The rule is the
    # pattern SUB_MILLISECOND, so that the JSON Schema says exactly the same.
    if re.match(SUB_MILLISECOND, value):
        if _duration_ms(value) < 1:
            raise ValueError(f"{value!r} is shorter than 1ms")
        raise ValueError(f"{value!r} is written too finely; write it in ms")
    return value


PositiveDuration = Annotated[Duration, AfterValidator(_at_least_1ms),
                             WithJsonSchema({"type": "string", "pattern": DURATION,
                                             "not": {"pattern": SUB_MILLISECOND}})]


class Strict(BaseModel):
    """Base for every manifest model: unknown fields are errors; camelCase in YAML."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        str_strip_whitespace=False,
    )


class ManifestJsonSchema(GenerateJsonSchema):
    """Pydantic writes a mapping's key pattern as `patternProperties` but lets other keys through;
    the loader does not, so neither does the schema."""

    def dict_schema(self, schema: Any) -> JsonSchemaValue:
        out = super().dict_schema(schema)
        if "patternProperties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out


def json_schema(model: Any) -> dict[str, Any]:
    """The JSON Schema of a manifest file's model (`mesh schema`)."""
    return TypeAdapter(model).json_schema(by_alias=True, schema_generator=ManifestJsonSchema)


# How the loader validates documents: strictly typed, camelCase names only.
VALIDATE: dict[str, Any] = {"strict": True, "by_alias": True, "by_name": False}


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

    model_config = ConfigDict(json_schema_extra={"not": {
        "required": ["size", "nodePools"], "properties": {"size": {"type": "string"}, "nodePools": {"type": "array"}}}})

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
        default=None, min_length=1, description="Explicit node pools, instead of a `size` preset."
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


# An external host: a lower-case DNS name, or one with a single leading `*.` wildcard label.
EXTERNAL_HOST = r"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
ExternalHost = Annotated[str, StringConstraints(pattern=EXTERNAL_HOST, max_length=253)]


class ExternalPort(Strict):
    """A port of an external destination, as the caller dials it."""

    number: int = Field(ge=1, le=65535, description="Port number the caller dials.")
    protocol: Literal["TLS", "HTTPS", "HTTP", "TCP"] = Field(
        description="TLS or HTTPS: the caller speaks TLS itself (routed by SNI). HTTP: plain HTTP "
        "(TLS is originated for it where `originateTls` is set). TCP: opaque, needs fixed `addresses` "
        "unless the host is exact."
    )
    target_port: int | None = Field(
        default=None, ge=1, le=65535,
        description="With `originateTls`: the port TLS is originated to (default 443).",
    )


class External(Strict):
    """A destination outside the mesh that the platform approves; services call it in `calls:`."""

    name: DnsLabel = Field(description="Unique name; names its ServiceEntry and related objects.")
    description: str | None = Field(default=None, description="Free text for humans (who owns it, why).")
    hosts: list[ExternalHost] = Field(
        min_length=1, description="Exact hosts, or `*.<domain>` (one leading wildcard label)."
    )
    ports: list[ExternalPort] = Field(min_length=1, description="Ports callers may dial.")
    addresses: list[IPv4OrCidr] = Field(
        default_factory=list,
        description="Fixed IPv4 addresses or CIDRs (e.g. a private managed service, Private Google "
        "Access 199.36.153.8/30). Without them the hosts are resolved by DNS.",
    )
    tiers: list[str] = Field(
        default_factory=list, description="Tiers whose services may call it."
    )
    all_workloads: bool = Field(
        default=False,
        description="Every workload of the fleet may reach it without declaring a call "
        "(e.g. Google APIs). Instead of `tiers`.",
    )
    egress_gateway: bool = Field(
        default=False,
        description="Traffic must leave through the cluster's egress gateway (one exact host, "
        "resolved by DNS); the gateway admits exactly the declared callers.",
    )
    originate_tls: bool = Field(
        default=False,
        description="Callers speak plain HTTP on the HTTP ports; TLS to the destination is "
        "originated for them (by the sidecar, or the egress gateway).",
    )

    @model_validator(mode="after")
    def _tiers_or_all(self) -> External:
        if self.all_workloads and self.tiers:
            raise ValueError("give tiers or allWorkloads: true, not both")
        if not self.all_workloads and not self.tiers:
            raise ValueError("name the tiers that may call it, or set allWorkloads: true")
        return self


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
    externals: list[External] = Field(
        default_factory=list,
        description="Approved destinations outside the mesh; services call them like mesh services.",
    )


# ------------------------------------------------------------------------------------------ services


class Port(Strict):
    """A port the service serves. Number and name are the same in every cluster."""

    name: Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=62)] = Field(
        description="Port name, e.g. http. Keys the east-west endpoint port map."
    )
    number: int = Field(
        ge=1, le=65535, description="Port number callers dial (not Istio's own 15000-15090).",
        json_schema_extra={"not": {"minimum": ISTIO_PORTS.start, "maximum": ISTIO_PORTS.stop - 1}},
    )
    protocol: Literal["HTTP", "HTTP2", "GRPC", "TCP", "TLS"] = Field(
        description="Application protocol. HTTP, HTTP2 and GRPC get HTTP routing features."
    )

    @field_validator("number")
    @classmethod
    def _not_an_istio_port(cls, number: int) -> int:
        if number in ISTIO_PORTS:
            raise ValueError(f"port {number} is in Istio's reserved range {ISTIO_PORTS.start}-"
                             f"{ISTIO_PORTS.stop - 1} (its proxies use it themselves); choose another")
        return number


def _call_shorthand(value: Any) -> Any:
    return {"host": value} if isinstance(value, str) else value


class Call(Strict):
    """A host this service calls; without a port, every port of that host."""

    host: DnsName = Field(description="Public host of the called service.")
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Only this port (default: all its ports)."
    )


Attempts = Annotated[int, Field(ge=0, le=10)]


class Retries(Strict):
    attempts: Attempts = Field(description="Retry attempts (0 disables retries).")
    per_try_timeout: PositiveDuration | None = Field(
        default=None, description="Timeout of each attempt, e.g. 500ms."
    )
    retry_on: Annotated[str, WithJsonSchema({"type": "string", "pattern": RETRY_ON_PATTERN})] | None = Field(
        default=None,
        description="Envoy retry conditions (default Istio's connect-failure,refused-stream,"
        "unavailable,cancelled); HTTP status codes (100-599) allowed too.",
    )

    @field_validator("retry_on")
    @classmethod
    def _known_conditions(cls, retry_on: str | None) -> str | None:
        if retry_on is None or re.match(RETRY_ON_PATTERN, retry_on):
            return retry_on
        unknown = [c.strip() for c in retry_on.split(",") if not re.fullmatch(_CONDITION, c.strip())]
        raise ValueError(f"unknown retryOn condition(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(sorted(RETRY_ON))}, or HTTP status codes 100-599")


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
    retries: Annotated[
        Retries | None,
        BeforeValidator(_retries_shorthand, json_schema_input_type=Attempts | Retries | None),
    ] = Field(
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
    calls: list[Annotated[Call, BeforeValidator(_call_shorthand, json_schema_input_type=DnsName | Call)]] = Field(
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

    model_config = ConfigDict(json_schema_extra={"not": {
        "required": ["role", "weight"], "properties": {"role": {"type": "string"}, "weight": {"type": "integer"}}}})

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

    @model_validator(mode="after")
    def _role_or_weight(self) -> Location:
        if self.role is not None and self.weight is not None:
            raise ValueError("give a location a role or a weight, not both")
        return self


LocationEntry = Annotated[Location, BeforeValidator(_location_shorthand, json_schema_input_type=str | Location)]


LocationsFile = dict[DnsLabel, list[LocationEntry]]
"""The platform's file of where services run: service name → its locations."""


class Bundle(Fleet):
    """A whole manifest in one file: the fleet, plus `services` and `locations` (both required, so
    that a fleet file given alone is not taken for a manifest without services)."""

    services: list[Service] = Field(description="Every service.")
    locations: LocationsFile = Field(description="Where each service runs.")
