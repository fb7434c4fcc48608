"""The stack outputs, as an API: a typed model other teams import to read them.

    from mesh.outputs import StackOutputs
    outputs = StackOutputs.model_validate_json(subprocess.check_output(
        ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", "acme/fleet-mesh/prod"]))
    outputs.clusters["core-use1-a"].east_west.external

Keys are camelCase on the wire. The model evolves by adding fields, never renaming; a breaking change
bumps `schemaVersion`. `kubeconfigs` is a Pulumi secret: without `--show-secrets` it reads
"[secret]", which the model accepts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mesh.model import World

# 2: istioRevision is the revision label (1-31-1), no longer the version; istioVersion holds that.
SCHEMA_VERSION = 2


class _Output(BaseModel):
    # Unknown keys are ignored so that older consumers keep working when fields are added.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class EastWestOutput(_Output):
    external: str = Field(description="External east-west gateway IP, dialled from other networks.")
    internal: str | None = Field(default=None, description="Internal IP, dialled from the same network.")


class ClusterOutput(_Output):
    name: str
    project: str
    region: str
    location: str = Field(description="GKE location: the region, or the zone of a zonal cluster.")
    network: str = Field(description="VPC network name (from fleet.yaml).")
    istio_network: str = Field(description="The cluster's Istio network (one per cluster).")
    tier: str
    endpoint: str = Field(description="Kubernetes API IP endpoint (authorized networks only).")
    dns_endpoint: str = Field(description="DNS-based control-plane endpoint (IAM-authorized); the kubeconfigs use it.")
    east_west: EastWestOutput
    ingress: str | None = Field(default=None, description="Ingress gateway IP, where ingress services run.")
    egress: list[str] | None = Field(
        default=None,
        description="Where an egress gateway runs (a caller of an `egressGateway` external runs here): the "
        "public addresses calls through it leave from — the Cloud NAT addresses of the cluster's region — which "
        "is what an external destination allowlists. None where no egress gateway is installed.")
    istio_version: str = Field(description="Istio version namespaces and gateways use, e.g. 1.31.1.")
    istio_revision: str = Field(description="Its revision label (`istio.io/rev`), e.g. 1-31-1.")
    istio_revisions: list[str] = Field(description="Every istiod revision installed (two during a canary upgrade).")
    managed: bool = Field(description="Whether this stack manages the cluster (shards manage a subset).")
    mesh_config_parts: int = Field(
        default=1, description="Into how many stacks the cluster's mesh config is split (`mesh:meshConfigPart`); "
        "this stack holds part 1.")


class PortOutput(_Output):
    name: str
    number: int
    protocol: str


class ServiceOutput(_Output):
    host: str
    namespace: str
    ports: list[PortOutput]
    clusters: list[str] = Field(description="Clusters the service runs in.")


class MeshConfigPartOutput(_Output):
    cluster: str
    part: int
    of: int
    objects: int = Field(description="Mesh objects this part holds.")


class StackOutputs(_Output):
    schema_version: Literal[2] = 2
    clusters: dict[str, ClusterOutput] = Field(description="Clusters this stack manages, by name.")
    services: dict[str, ServiceOutput] = Field(description="Every service of the fleet, by name.")
    nat_addresses: list[str] = Field(
        description="This stack's Cloud NAT addresses: its nodes' egress, e.g. for other shards' firewalls.")
    nat_addresses_by_region: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict,
        description="The same, as network -> region -> addresses: a shard admits only the regions that call it.")
    root_ca_certificate: str = Field(description="PEM of the mesh root CA (public).")
    kubeconfigs: dict[str, str] | str = Field(description="Per-cluster kubeconfig (secret).")
    mesh_config_part: MeshConfigPartOutput | None = Field(
        default=None, description="Set by a stack that holds only part 2+ of one cluster's mesh config (it manages "
        "no cluster: `clusters` is empty).")


def services_output(world: World) -> dict[str, Any]:
    """The `services` output: every service of the fleet, whichever stack exports it."""
    return {
        s.name: {
            "host": s.host, "namespace": s.namespace,
            "ports": [{"name": p.name, "number": p.number, "protocol": p.protocol} for p in s.ports],
            "clusters": list(world.clusters_of(s.name)),
        }
        for s in world.services.values()
    }


def json_schema() -> dict[str, object]:
    """The outputs' JSON Schema (`mesh schema outputs`), for consumers that do not use Python."""
    schema = StackOutputs.model_json_schema(by_alias=True, mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://fleet-mesh.example/schemas/stack-outputs-v{SCHEMA_VERSION}.json", **schema}
