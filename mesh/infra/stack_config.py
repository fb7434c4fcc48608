"""The stack's settings (`mesh:` keys of Pulumi.<stack>.yaml), read in one place and validated.

Validated as strictly as the manifest: every key known (an unknown one gets a "did you mean"),
types exact, formats checked (the root CA's PEM structure, CIDRs with a prefix, versions, stack
names). The program (`parse_stack_config`) sees values as Pulumi passes them (strings; lists as
JSON) and reports `mesh:key: message`; `mesh preview` reads the stack file itself
(`read_stack_file`) and reports `Pulumi.<stack>.yaml:line: mesh:key: message`, duplicate keys and
YAML errors included.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import difflib
import json
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, ValidationError, ValidationInfo, field_validator

from mesh.diagnostics import Diagnostic, ManifestError, NodePath, display_path, field_name
from mesh.infra.parts import MAX_PARTS
from mesh.manifest import messages
from mesh.manifest.schema import VALIDATE, Cidr, ClusterName, Strict
from mesh.manifest.yaml_source import line_of, parse

CONFIG_NAMESPACE = "mesh"
DEFAULT_CHART_REPOSITORY = "https://blob.istio.io/istio-release/charts"


class AuthorizedNetwork(Strict):
    cidr_block: Cidr = Field(description="Where `kubectl`/Pulumi may reach the control planes from.")
    display_name: str = Field(description="Shown in the GKE console.")


ISTIO_VERSION = r"^1\.[0-9]+\.[0-9]+$"
STACK_NAME = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
CHART_REPOSITORY = r"^(https|oci)://[^\s/]+"
IMAGE_PATTERN = r"^[^\s]+$"
_HINTS = {
    ISTIO_VERSION: "an Istio version such as 1.31.1",
    STACK_NAME: "a stack name org/project/stack",
    CHART_REPOSITORY: "an https:// or oci:// address",
    IMAGE_PATTERN: "an image name pattern without spaces, such as us-docker.pkg.dev/acme-images/**",
}
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.S)


def _der_length(data: bytes, at: int) -> tuple[int, int]:
    """(length, offset of the content) of the DER element whose tag is at `at`."""
    first = data[at + 1]
    if first < 0x80:
        return first, at + 2
    count = first & 0x7F
    if count == 0 or count > 4 or at + 2 + count > len(data):
        raise ValueError("bad length")
    return int.from_bytes(data[at + 2: at + 2 + count], "big"), at + 2 + count


def _check_certificate_der(der: bytes) -> None:
    """An X.509 certificate: SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE,
    signature BIT STRING }, exactly filling the data."""
    length, start = _der_length(der, 0)
    if der[0] != 0x30 or start + length != len(der):
        raise ValueError("not one DER SEQUENCE")
    at, tags = start, []
    while at < len(der):
        size, content = _der_length(der, at)
        tags.append(der[at])
        at = content + size
    if at != len(der) or tags != [0x30, 0x30, 0x03]:
        raise ValueError("not the three parts of a certificate")


def check_pem_certificate(value: str) -> str:
    """One PEM `CERTIFICATE` whose base64 decodes to the DER structure of an X.509 certificate."""
    blocks = _PEM.findall(value)
    if not blocks:
        raise ValueError("is not a PEM certificate (no -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE----- "
                         "block)")
    kinds = [kind for kind, _ in blocks]
    if any("PRIVATE KEY" in kind for kind in kinds):
        raise ValueError("holds a private key: the certificate goes here, its key in the secret mesh:rootCaKey "
                         "(`pulumi config set --secret mesh:rootCaKey < key.pem`)")
    if kinds != ["CERTIFICATE"]:
        raise ValueError(f"must hold exactly one CERTIFICATE block, the root (found {', '.join(kinds)})")
    if _PEM.sub("", value).strip():
        raise ValueError("has text outside its -----BEGIN/END CERTIFICATE----- block")
    try:
        der = base64.b64decode("".join(blocks[0][1].split()), validate=True)
        _check_certificate_der(der)
    except (binascii.Error, ValueError, IndexError):
        raise ValueError("is damaged: the base64 between BEGIN and END is not an X.509 certificate") from None
    return value


IstioVersion = Annotated[str, StringConstraints(pattern=ISTIO_VERSION)]
StackName = Annotated[str, StringConstraints(pattern=STACK_NAME)]
PemCertificate = Annotated[str, AfterValidator(check_pem_certificate)]


class MeshConfigPart(Strict):
    cluster: ClusterName
    part: int = Field(ge=1, le=MAX_PARTS, description="Which part this stack holds; 1 is the stack managing the "
                                                       "cluster, which also keeps the cluster's shared objects.")
    of: int = Field(ge=2, le=MAX_PARTS, description="How many parts the cluster's mesh config is split into.")

    @property
    def part_only(self) -> bool:
        """Part 2+: the stack holds only this part, and manages no cluster."""
        return self.part > 1

    @field_validator("of")
    @classmethod
    def _part_within(cls, of: int, info: ValidationInfo) -> int:
        part = info.data.get("part")
        if part is not None and part > of:
            raise ValueError(f"part {part} of {of} does not exist")
        return of


class StackConfig(Strict):
    """Every `mesh:` key. Secrets (the provided root CA key) are read separately, as secrets."""

    manifest: str = Field(default="stacks/prod", min_length=1, description="The manifest folder or file.")
    istio_version: IstioVersion = Field(
        description="Pinned Istio version whose revision namespaces and gateways use.")
    istio_revisions: list[IstioVersion] | None = Field(
        default=None, min_length=1, max_length=2,
        description="Every istiod installed, one revision each (default: istioVersion only). Two during a "
                    "canary upgrade: install the new one beside, move istioVersion, then drop the old one.")
    chart_repository: str = Field(default=DEFAULT_CHART_REPOSITORY, pattern=CHART_REPOSITORY,
                                  description="Istio Helm charts (1.31+ are not on the old GCS repo).")
    clusters: list[ClusterName] | None = Field(
        default=None, min_length=1, description="Shard: the clusters this stack manages (default: every cluster).")
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = Field(default="REGULAR")
    master_authorized_networks: list[AuthorizedNetwork] = Field(
        default_factory=list, description="Ranges allowed to reach GKE control planes (e.g. CI runners).")
    east_west_source_ranges: list[Cidr] = Field(
        default_factory=list,
        description="Extra ranges allowed to reach external east-west gateways (other shards' NAT).")
    root_ca_certificate: PemCertificate | None = Field(
        default=None, description="PEM of an existing (offline) root CA; with mesh:rootCaKey (secret).")
    ingress_source_ranges: list[Cidr] = Field(
        default_factory=list,
        description="Who may reach the ingress gateways' load balancers (e.g. your CDN's egress ranges); "
                    "required when a cluster runs an `ingress: true` service.")
    peer_stacks: list[StackName] = Field(
        default_factory=list,
        description="The other shards of the fleet (`org/project/stack`): their outputs give the east-west and "
                    "NAT addresses of the clusters they manage.")
    allowed_images: list[Annotated[str, StringConstraints(pattern=IMAGE_PATTERN)]] = Field(
        default_factory=list,
        description="Binary Authorization name patterns of your teams' images (e.g. "
                    "`us-docker.pkg.dev/acme-images/**`); Istio's and Google's are always allowed. While empty, "
                    "the policy only audits.")
    decommission: list[str] = Field(
        default_factory=list,
        description="Clusters to be deleted next: their deletion protection (GKE's and Pulumi's) is lifted so that "
                    "removing them from the fleet file in a later change can delete them. They must run no service.")
    mesh_config_part: MeshConfigPart | None = Field(
        default=None,
        description="For a cluster too big for one stack (`mesh shards` proposes this): the part of its mesh config "
                    "this stack holds. Part 1 is held by the stack managing the cluster (mesh:clusters lists it "
                    "alone); a stack holding another part manages nothing else, and reads the cluster's endpoint "
                    "from that stack (mesh:peerStacks).")

    @field_validator("clusters", "peer_stacks", "istio_revisions", "allowed_images")
    @classmethod
    def _no_repeats(cls, values: list[str] | None) -> list[str] | None:
        repeated = sorted({v for v in values or [] if (values or []).count(v) > 1})
        if repeated:
            raise ValueError(f"lists {', '.join(map(repr, repeated))} more than once")
        return values

    @field_validator("istio_revisions")
    @classmethod
    def _version_is_installed(cls, revisions: list[str] | None, info: ValidationInfo) -> list[str] | None:
        version = info.data.get("istio_version")
        if revisions is not None and version is not None and version not in revisions:
            raise ValueError(f"istioVersion {version} must be one of istioRevisions ({', '.join(revisions)}): "
                             "namespaces and gateways use it")
        return revisions

    @field_validator("mesh_config_part")
    @classmethod
    def _part_fits_stack(cls, part: MeshConfigPart | None, info: ValidationInfo) -> MeshConfigPart | None:
        if part is None:
            return part
        clusters = info.data.get("clusters")
        if not part.part_only and clusters != [part.cluster]:
            raise ValueError(f"part 1 is held by the stack managing {part.cluster}: set {CONFIG_NAMESPACE}:clusters "
                             f"to [{part.cluster}] alone")
        if part.part_only:
            if clusters is not None:
                raise ValueError(f"a stack holding part {part.part} of {part.cluster}'s mesh config manages no "
                                 f"cluster: remove {CONFIG_NAMESPACE}:clusters")
            if info.data.get("decommission"):
                raise ValueError(f"a stack holding part {part.part} manages no cluster to decommission: remove "
                                 f"{CONFIG_NAMESPACE}:decommission")
            if not info.data.get("peer_stacks"):
                raise ValueError(f"part {part.part} reads {part.cluster}'s endpoint from the stack managing it: "
                                 f"list that stack in {CONFIG_NAMESPACE}:peerStacks")
        return part

    @property
    def installed_versions(self) -> tuple[str, ...]:
        return tuple(sorted(self.istio_revisions or [self.istio_version], key=_version_key))


def manifest_path(project_dir: Path, manifest: str) -> Path:
    """`mesh:manifest` as the Pulumi CLI reads it: relative to the project folder."""
    return Path(manifest) if Path(manifest).is_absolute() else project_dir / manifest


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


class StackConfigError(Exception):
    """The stack configuration is unusable; the message says which key and why."""


SECRET_KEYS = ("rootCaKey",)  # read by the program as secrets, never validated as plain values
KEYS = (*(field.alias or name for name, field in StackConfig.model_fields.items()), *SECRET_KEYS)
_JSON_KEYS = frozenset(  # lists and objects: Pulumi passes them as JSON strings
    field.alias or name for name, field in StackConfig.model_fields.items()
    if list in (typing.get_origin(a) for a in (field.annotation, *typing.get_args(field.annotation)))
    or MeshConfigPart in (field.annotation, *typing.get_args(field.annotation)))


def decode_values(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Values as Pulumi passes them (strings; lists and objects as JSON) decoded for `StackConfig`.
    A value that is not the JSON it should be stays a string, and validation says what it must be."""
    values = {}
    for key, value in raw.items():
        if key in _JSON_KEYS and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        values[key] = value
    return values


def check(values: Mapping[str, Any]) -> list[tuple[NodePath, str]]:
    """Every problem of the `mesh:` values (keys without the namespace), as (path, message)."""
    out: list[tuple[NodePath, str]] = []
    plain = {}
    for key, value in values.items():
        if key in SECRET_KEYS:
            continue
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f"; did you mean {CONFIG_NAMESPACE}:{close[0]}?" if close else f"; known keys: {', '.join(KEYS)}"
            out.append(((key,), f"unknown key{hint}"))
        else:
            plain[key] = value
    try:
        StackConfig.model_validate(plain, **VALIDATE)
    except ValidationError as exc:
        for error in exc.errors():
            path, _ = messages.yaml_path(plain, error["loc"])
            words = messages.message(error, messages.model_at(StackConfig, path[:-1]), hints=_HINTS)
            out.append((path, words))
    return out


def parse_stack_config(values: Mapping[str, Any]) -> StackConfig:
    problems = check(values)
    if problems:
        lines = [f"{CONFIG_NAMESPACE}:{field_name(path)}: {message}" for path, message in problems]
        raise StackConfigError("invalid stack configuration:\n  " + "\n  ".join(lines))
    return StackConfig.model_validate(dict(values), **VALIDATE)


# ------------------------------------------------------------------------------- the stack files


def _fault_diagnostics(path: Path, root: Path) -> tuple[list[Any], list[Diagnostic]]:
    documents, faults = parse(path)
    shown = display_path(path, root)
    return documents, [Diagnostic(shown, f.line, "", f.message, f.reason) for f in faults]


def read_project_name(path: Path) -> str:
    """The `name:` of Pulumi.yaml, or `ManifestError` saying why it cannot be read."""
    documents, errors = _fault_diagnostics(path, path.parent)
    name = documents[0].get("name") if len(documents) == 1 and isinstance(documents[0], dict) else None
    if not errors and not (isinstance(name, str) and name):
        line = line_of(path, 0, ("name",))
        errors = [Diagnostic(display_path(path, path.parent), line, "name", "the project needs a name (a string)")]
    if errors:
        raise ManifestError(errors)
    assert isinstance(name, str)
    return name


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `config:` mapping of Pulumi.<stack>.yaml, its `mesh:` keys validated; or `ManifestError`
    with every problem at its line."""
    documents, errors = _fault_diagnostics(path, path.parent)
    shown = display_path(path, path.parent)
    document = documents[0] if len(documents) == 1 else {} if not documents else None
    config = document.get("config") if isinstance(document, dict) else None
    if not errors and (not isinstance(document, dict) or not isinstance(config, dict | None)):
        errors = [Diagnostic(shown, 1, "config", "must be a mapping of configuration keys to values")]
    if errors:
        raise ManifestError(errors)
    config = config or {}
    errors = [Diagnostic(shown, line_of(path, 0, ("config", *_full(where)), len(where) == 1), field_name(_full(where)),
                         message, "stack-config") for where, message in _check_file_values(config)]
    if errors:
        raise ManifestError(errors)
    return config


def _full(where: NodePath) -> NodePath:
    return (f"{CONFIG_NAMESPACE}:{where[0]}", *where[1:])


def _check_file_values(config: Mapping[Any, Any]) -> list[tuple[NodePath, str]]:
    values: dict[str, Any] = {}
    out: list[tuple[NodePath, str]] = []
    for full, value in config.items():
        namespace, _, key = str(full).partition(":")
        if namespace != CONFIG_NAMESPACE:
            continue
        secure = isinstance(value, dict) and set(value) == {"secure"}
        if key in SECRET_KEYS and not secure:
            out.append(((key,), f"must be a secret: `pulumi config set --secret {CONFIG_NAMESPACE}:{key}`"))
        elif not secure:  # encrypted values are checked by the program, which sees them decrypted
            values[key] = value
    return out + check(values)
