"""The stack's settings (`mesh:` keys of Pulumi.<stack>.yaml), read in one place and validated."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationError, model_validator

from mesh.manifest.schema import Cidr, Strict

CONFIG_NAMESPACE = "mesh"
DEFAULT_CHART_REPOSITORY = "https://blob.istio.io/istio-release/charts"


class AuthorizedNetwork(Strict):
    cidr_block: Cidr = Field(description="Where `kubectl`/Pulumi may reach the control planes from.")
    display_name: str = Field(description="Shown in the GKE console.")


IstioVersion = Annotated[str, Field(pattern=r"^1\.[0-9]+\.[0-9]+$")]
StackName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")]


class StackConfig(Strict):
    """Every `mesh:` key. Secrets (the provided root CA key) are read separately, as secrets."""

    manifest: str = Field(default="stacks/prod", description="The manifest folder or file.")
    istio_version: IstioVersion = Field(
        description="Pinned Istio version whose revision namespaces and gateways use.")
    istio_revisions: list[IstioVersion] | None = Field(
        default=None, min_length=1, max_length=2,
        description="Every istiod installed, one revision each (default: istioVersion only). Two during a "
                    "canary upgrade: install the new one beside, move istioVersion, then drop the old one.")
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
    ingress_source_ranges: list[Cidr] = Field(
        default_factory=list,
        description="Who may reach the ingress gateways' load balancers (e.g. your CDN's egress ranges); "
                    "required when a cluster runs an `ingress: true` service.")
    peer_stacks: list[StackName] = Field(
        default_factory=list,
        description="The other shards of the fleet (`org/project/stack`): their outputs give the east-west and "
                    "NAT addresses of the clusters they manage.")
    allowed_images: list[str] = Field(
        default_factory=list,
        description="Binary Authorization name patterns of your teams' images (e.g. "
                    "`us-docker.pkg.dev/acme-images/**`); Istio's and Google's are always allowed. While empty, "
                    "the policy only audits.")
    decommission: list[str] = Field(
        default_factory=list,
        description="Clusters to be deleted next: their deletion protection (GKE's and Pulumi's) is lifted so that "
                    "removing them from the fleet file in a later change can delete them. They must run no service.")

    @model_validator(mode="after")
    def _version_is_installed(self) -> StackConfig:
        if self.istio_revisions is not None:
            if self.istio_version not in self.istio_revisions:
                raise ValueError(f"istioVersion {self.istio_version} must be one of istioRevisions "
                                 f"({', '.join(self.istio_revisions)}): namespaces and gateways use it")
            if len(set(self.istio_revisions)) != len(self.istio_revisions):
                raise ValueError("istioRevisions lists a version twice")
        return self

    @property
    def installed_versions(self) -> tuple[str, ...]:
        return tuple(sorted(self.istio_revisions or [self.istio_version], key=_version_key))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


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
