"""`mesh preview`: the real Pulumi program, run offline under Pulumi's own mock engine.

No Pulumi CLI, cloud or cluster is needed: `pulumi.runtime.set_mocks` (the mechanism Pulumi documents
for unit tests) stands in for the engine. The program runs exactly as `pulumi up` would run it, with
the configuration of `Pulumi.<stack>.yaml`; `secure:` values are replaced by marked placeholders
(the CLI alone can decrypt them). Every registration is recorded with its options (parent, provider,
protect, dependencies, ignored changes) — things `pulumi preview` shows but mock arguments omit.

This is not a preview against real state: there is no diff, no provider check, and values only the
cloud knows (IPs, endpoints, certificates) appear as `<computed>`. What the program looks up is
answered as follows, and said so in the output: project numbers are derived from the project id
(marked fakes: the real ones come from Resource Manager); a pinned external east-west address is
taken to be reserved in the cluster's project and region, as the fleet file promises;
another shard's outputs (`mesh:peerStacks`) are derived from that shard's own `Pulumi.<stack>.yaml`
here (`mesh.peer_outputs`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import runpy
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format  # type: ignore[import-untyped]
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.stack import wait_for_rpcs

COMPUTED = "<computed>"

PROGRESS_EVERY = 250
SECRET = "[secret]"
SECRET_PLACEHOLDER = "[secure value: decrypted only by the Pulumi CLI]"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

# Outputs the cloud computes, by resource type: what the mock engine returns for them.
_COMPUTED_OUTPUTS: dict[str, dict[str, Any]] = {
    "gcp:container/cluster:Cluster": {"endpoint": COMPUTED, "masterAuth": {"clusterCaCertificate": COMPUTED},
                                      "controlPlaneEndpointsConfig": {"dnsEndpointConfig": {"endpoint": COMPUTED}}},
    "gcp:compute/network:Network": {"selfLink": COMPUTED},
    "gcp:compute/subnetwork:Subnetwork": {"selfLink": COMPUTED},
    "gcp:serviceaccount/account:Account": {"email": COMPUTED},
    "tls:index/privateKey:PrivateKey": {"privateKeyPem": COMPUTED, "publicKeyPem": COMPUTED},
    "tls:index/selfSignedCert:SelfSignedCert": {"certPem": COMPUTED},
    "tls:index/certRequest:CertRequest": {"certRequestPem": COMPUTED},
    "tls:index/locallySignedCert:LocallySignedCert": {"certPem": COMPUTED},
}


class PreviewError(Exception):
    """The stack cannot be previewed (missing file, program error); the message says why."""


def offline_project_number(project: str) -> str:
    """A stable stand-in for a project number (12 digits, starting 9000 so it reads as a fake)."""
    return "9000" + str(int(hashlib.sha256(project.encode()).hexdigest(), 16))[:8]


@dataclass(frozen=True)
class OfflineWorld:
    """What the cloud would answer to the program's lookups, offline."""

    reservations: Mapping[tuple[str, str, str], str] = field(default_factory=dict)  # (project, region, name) -> IP
    stack_outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # "org/project/stack" -> outputs


def _merged(state: dict[str, Any], computed: Mapping[str, Any]) -> dict[str, Any]:
    """Inputs with the cloud's computed fields added, nested ones included."""
    for key, value in computed.items():
        if isinstance(value, Mapping) and isinstance(state.get(key), Mapping):
            state[key] = _merged(dict(state[key]), value)
        else:
            state[key] = value
    return state


class OfflineMocks(pulumi.runtime.Mocks):
    """What the mock engine returns: inputs as state, plus placeholders for cloud-computed outputs."""

    def __init__(self, world: OfflineWorld | None = None) -> None:
        self.world = world or OfflineWorld()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = _merged(dict(args.inputs), _COMPUTED_OUTPUTS.get(args.typ, {}))
        if args.typ == "gcp:compute/address:Address":
            state["address"] = args.inputs.get("address") or COMPUTED  # pinned, or chosen by GCP
        if args.typ == "pulumi:pulumi:StackReference":
            name = args.inputs.get("name", args.name)
            if name not in self.world.stack_outputs:
                # The real engine fails the same way when the referenced stack does not exist.
                raise PreviewError(f"stack reference {name!r}: no such stack here (looked for "
                                   f"Pulumi.{str(name).rsplit('/', 1)[-1]}.yaml)")
            state["outputs"] = dict(self.world.stack_outputs[name])
            state["secretOutputNames"] = ["kubeconfigs"]
        return f"{args.name}-id", state

    def call(  # type: ignore[override]  # the SDK accepts a bare dict too, and only a bare dict for success
        self, args: pulumi.runtime.MockCallArgs,
    ) -> dict[str, Any] | tuple[dict[str, Any], list[tuple[str, str]]]:
        # A bare dict is a success; (dict, failures) makes the invoke fail as the provider's would.
        if args.token == "gcp:organizations/getProject:getProject":
            project = str(args.args.get("projectId"))
            return {"projectId": project, "name": project, "number": offline_project_number(project)}
        if args.token == "gcp:compute/getAddresses:getAddresses":
            project, region = str(args.args.get("project")), str(args.args.get("region"))
            wanted = str(args.args.get("filter", "")).partition("=")[2].strip().strip('"')
            found = [{"address": ip, "addressType": "EXTERNAL", "description": "", "labels": {}, "name": name,
                      "prefixLength": 0, "region": region, "status": "RESERVED",
                      "selfLink": f"projects/{project}/regions/{region}/addresses/{name}"}
                     for (p, r, name), ip in sorted(self.world.reservations.items())
                     if (p, r) == (project, region) and ip == wanted]
            return {"addresses": found, "project": project, "region": region, "id": f"{project}/{region}"}
        return {}


@dataclass(frozen=True)
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    provider: str
    protect: bool
    dependencies: tuple[str, ...]
    ignore_changes: tuple[str, ...]
    custom: bool
    inputs: dict[str, Any]
    retain_on_delete: bool = False
    read: bool = False  # an existing resource looked up, not created


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """Keeps every RegisterResource request: the options mock arguments do not carry."""

    def __init__(self, mocks: pulumi.runtime.Mocks, progress: bool = False) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self._progress = progress

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if self._progress and len(self.registrations) % PROGRESS_EVERY == 0 and self.registrations:
            print(f"\r  registered {len(self.registrations):,} resources…", end="", file=sys.stderr, flush=True)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(Registration(
                urn=normalize_urn(response.urn), type=request.type, name=request.name,
                parent=normalize_urn(request.parent),
                provider=normalize_urn(request.provider.rsplit("::", 1)[0]),  # "<urn>::<id>"
                protect=bool(request.protect),
                dependencies=tuple(sorted(normalize_urn(d) for d in request.dependencies)),
                ignore_changes=tuple(request.ignoreChanges), custom=bool(request.custom),
                inputs=_wire(json_format.MessageToDict(request.object)),
                retain_on_delete=bool(request.retainOnDelete),
            ))
        return response

    def ReadResource(self, request: Any) -> Any:
        """Reads (`StackReference`, `get` of an existing resource) are part of what a preview shows."""
        response = super().ReadResource(request)  # type: ignore[no-untyped-call]
        self.registrations.append(Registration(
            urn=normalize_urn(response.urn), type=request.type, name=request.name,
            parent=normalize_urn(request.parent), provider=normalize_urn(request.provider.rsplit("::", 1)[0]),
            protect=False, dependencies=tuple(sorted(normalize_urn(d) for d in request.dependencies)),
            ignore_changes=(), custom=True, inputs=_wire(json_format.MessageToDict(request.properties)),
            read=True,
        ))
        return response


def normalize_urn(urn: str) -> str:
    """Mock URNs of root-level resources carry `pulumi:pulumi:Stack$`; the engine's do not."""
    if "::" not in urn:
        return urn
    head, _, tail = urn.rpartition("::")
    return head.replace("pulumi:pulumi:Stack$", "") + "::" + tail if head else urn


def _wire(value: Any) -> Any:
    """Serialized inputs for display: secrets masked, unknowns marked."""
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return SECRET
        return {k: _wire(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    if value == _UNKNOWN:
        return COMPUTED
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire format has only doubles; 1.0 was an int in the program
    return value


@dataclass
class PreviewResult:
    stack: str
    project: str
    registrations: list[Registration]
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # what the program logged with pulumi.log.warn

    def cluster_of(self) -> dict[str, str]:
        """urn → the cluster a resource belongs to ("fleet" for shared ones)."""
        by_urn = {r.urn: r for r in self.registrations}
        owners = {"fleet-mesh:gke:Cluster", "fleet-mesh:istio:ControlPlane"}
        out = {}
        for registration in self.registrations:
            node: Registration | None = registration
            cluster = "fleet"
            while node is not None:
                if node.type in owners:
                    cluster = node.name
                    break
                if node.type == "fleet-mesh:mesh:Config":
                    cluster = node.name.removesuffix("-mesh")
                    break
                node = by_urn.get(node.parent)
            out[registration.urn] = cluster
        return out


def read_stack_config(project_dir: Path, stack: str) -> tuple[str, dict[str, str], list[str]]:
    """(project name, flat config as Pulumi passes it, secret keys) from the project's YAML files."""
    project_file = project_dir / "Pulumi.yaml"
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    for path in (project_file, stack_file):
        if not path.is_file():
            raise PreviewError(f"{path} not found")
    from mesh.infra import stack_config

    # Read strictly (duplicate keys, YAML errors, every `mesh:` key checked), each problem at its line:
    # `ManifestError`, reported like the manifest's.
    project = stack_config.read_project_name(project_file)
    values = stack_config.read_stack_file(stack_file)
    config: dict[str, str] = {}
    secrets: list[str] = []
    for key, value in values.items():
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full] = SECRET_PLACEHOLDER
            secrets.append(full)
        else:
            config[full] = value if isinstance(value, str) else json.dumps(value)
    return project, config, secrets


class _WarningsToStderr(logging.Logger):
    """The program's `pulumi.log.warn` (e.g. a stack grown too large), shown as `pulumi preview` would."""

    def __init__(self) -> None:
        super().__init__("mesh.preview")
        self.warnings: list[str] = []

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.warnings.append(str(msg))
        print(f"warning: {msg}", file=sys.stderr)


def run(project_dir: Path, stack: str, progress: bool = False) -> PreviewResult:
    project, config, secrets = read_stack_config(project_dir, stack)
    program = project_dir / "__main__.py"
    from mesh.peer_outputs import peer_outputs

    world = OfflineWorld(reservations=assumed_reservations(project_dir, config),
                         stack_outputs=peer_outputs(project_dir, config, read_stack_config))
    return asyncio.run(_run(program, project, stack, config, secrets, world, progress))


def _manifest_path(project_dir: Path, config: Mapping[str, str]) -> Path:
    from mesh.infra import stack_config

    return stack_config.manifest_path(project_dir, config.get("mesh:manifest", "stacks/prod"))


def assumed_reservations(project_dir: Path, config: Mapping[str, str]) -> dict[tuple[str, str, str], str]:
    """Pinned external east-west addresses, taken to be reserved where the program looks them up."""
    from mesh.manifest import ManifestError, load

    try:
        world = load(_manifest_path(project_dir, config)).world
    except (ManifestError, OSError):
        return {}  # the program itself reports the manifest's errors
    return {(c.project, c.region, f"{c.name}-eastwest"): c.east_west.external
            for c in world.clusters.values() if c.east_west is not None and c.east_west.external}


async def _run(program: Path, project: str, stack: str, config: dict[str, str], secrets: list[str],
               world: OfflineWorld, progress: bool = False) -> PreviewResult:
    # A previous run in this process may have stopped on an error with RPCs outstanding; waiting
    # on them would hang this one (what `@pulumi.runtime.test` clears too).
    settings = pulumi.runtime.settings.SETTINGS
    settings.rpc_manager.clear()
    settings.outputs.clear()
    pulumi.runtime.set_all_config(config, secrets)
    mocks = OfflineMocks(world)
    monitor = _RecordingMonitor(mocks, progress)
    logger = _WarningsToStderr()
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor, logger=logger)
    sys.path.insert(0, str(program.parent))
    # The Pulumi CLI runs a program in its project folder: relative paths in the stack config (the
    # manifest) mean the same here.
    cwd = os.getcwd()
    os.chdir(program.parent)
    try:
        runpy.run_path(str(program), run_name="__main__")
        await wait_for_rpcs()
    finally:
        os.chdir(cwd)
        sys.path.remove(str(program.parent))
    root = pulumi.runtime.settings.get_root_resource()
    outputs = {name: await _resolve(value) for name, value in sorted(getattr(root, "outputs", {}).items())}
    if progress and monitor.registrations:
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)
    return PreviewResult(stack, project, monitor.registrations, outputs, logger.warnings)


async def _resolve(value: Any) -> Any:
    if isinstance(value, pulumi.Output):
        if await value.is_secret():
            return SECRET
        return await _resolve(await value.future())
    if isinstance(value, Mapping):
        return {k: await _resolve(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [await _resolve(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# --------------------------------------------------------------------------------------- output


def tree(result: PreviewResult) -> str:
    children: dict[str, list[Registration]] = {}
    # Registration order depends on when inputs resolve; sorted, the tree is the same every run.
    for registration in sorted(result.registrations, key=lambda r: (r.type, r.name)):
        children.setdefault(registration.parent, []).append(registration)
    stack_urn = next((r.parent for r in result.registrations if r.parent.endswith("pulumi:pulumi:Stack::"
                                                                                  f"{result.project}-{result.stack}")),
                     "")
    lines = [f"{'Type':58} {'Name':44} Provider", f"+ pulumi:pulumi:Stack{'':37} {result.project}-{result.stack}"]

    def walk(parent: str, prefix: str) -> None:
        items = children.get(parent, [])
        for i, item in enumerate(items):
            last = i == len(items) - 1
            branch = "└─ " if last else "├─ "
            provider = item.provider.rsplit("::", 1)[-1] if item.provider else ""
            flags = " [protect]" if item.protect else ""
            lines.append(f"+ {prefix}{branch}{item.type:{max(1, 55 - len(prefix))}} {item.name:44} {provider}{flags}")
            walk(item.urn, prefix + ("   " if last else "│  "))

    walk(stack_urn, "")
    return "\n".join(lines)


def summary(result: PreviewResult) -> str:
    per_type = Counter(r.type for r in result.registrations)
    per_cluster = Counter(result.cluster_of().values())
    lines = [f"Resources: {len(result.registrations) + 1} to create (stack included)", "", "By type:"]
    lines += [f"  {count:6d}  {kind}" for kind, count in sorted(per_type.items())]
    lines += ["", "By cluster:"]
    lines += [f"  {count:6d}  {cluster}" for cluster, count in sorted(per_cluster.items())]
    lines += ["", "Outputs:", json.dumps(result.outputs, indent=2, sort_keys=True)]
    return "\n".join(lines)


def snapshot(result: PreviewResult) -> str:
    """Normalized desired state: URN → type, options, inputs; stable for diffs."""
    resources = {
        r.urn: {
            "type": r.type, "parent": r.parent, "provider": r.provider, "protect": r.protect,
            **({"retainOnDelete": True} if r.retain_on_delete else {}), **({"read": True} if r.read else {}),
            "dependencies": list(r.dependencies), "ignoreChanges": list(r.ignore_changes), "inputs": r.inputs,
        }
        for r in sorted(result.registrations, key=lambda r: r.urn)
    }
    return json.dumps({"stack": result.stack, "resources": resources, "outputs": result.outputs},
                      indent=1, sort_keys=True) + "\n"
