"""The stack's settings (`mesh:` keys of Pulumi.<stack>.yaml), read in one place and validated."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError

from mesh.manifest.schema import Cidr, Strict

CONFIG_NAMESPACE = "mesh"
DEFAULT_CHART_REPOSITORY = "https://blob.istio.io/istio-release/charts"


class AuthorizedNetwork(Strict):
    cidr_block: Cidr = Field(description="Where `kubectl`/Pulumi may reach the control planes from.")
    display_name: str = Field(description="Shown in the GKE console.")


class StackConfig(Strict):
    """Every `mesh:` key. Secrets (the provided root CA key) are read separately, as secrets."""

    manifest: str = Field(default="stacks/prod", description="The manifest folder or file.")
    istio_version: str = Field(pattern=r"^1\.[0-9]+\.[0-9]+$", description="Pinned Istio chart version.")
    chart_repository: str = Field(default=DEFAULT_CHART_REPOSITORY, pattern=r"^(https|oci)://",
                                  description="Istio Helm charts (1.31+ are not on the old GCS repo).")
    clusters: list[str] | None = Field(
        default=None, description="Shard: the clusters this stack manages (default: every cluster).")
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = Field(default="REGULAR")
    master_authorized_networks: list[AuthorizedNetwork] = Field(
        default_factory=list, description="Ranges allowed to reach GKE control planes (e.g. CI runners).")
    east_west_source_ranges: list[Cidr] = Field(
        default_factory=list,
        description="Extra ranges allowed to reach external east-west gateways (other shards' NAT).")
    root_ca_certificate: str | None = Field(
        default=None, description="PEM of an existing (offline) root CA; with mesh:rootCaKey (secret).")


class StackConfigError(Exception):
    """The stack configuration is unusable; the message says which key and why."""


def parse_stack_config(values: dict[str, object]) -> StackConfig:
    try:
        return StackConfig.model_validate(values)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
            lines.append(f"{CONFIG_NAMESPACE}:{key}: {message}")
        raise StackConfigError("invalid stack configuration:\n  " + "\n  ".join(lines)) from None


KEYS = tuple(field.alias or name for name, field in StackConfig.model_fields.items())
