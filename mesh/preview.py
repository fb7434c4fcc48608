"""`mesh preview`: the real Pulumi program, run offline under Pulumi's own mock engine.

No Pulumi CLI, cloud or cluster is needed: `pulumi.runtime.set_mocks` (the mechanism Pulumi documents
for unit tests) stands in for the engine. The program runs exactly as `pulumi up` would run it, with
the configuration of `Pulumi.<stack>.yaml`; `secure:` values are replaced by marked placeholders
(the CLI alone can decrypt them). Every registration is recorded with its options (parent, provider,
protect, dependencies, ignored changes) — things `pulumi preview` shows but mock arguments omit.

This is not a preview against real state: there is no diff, no provider check, and values only the
cloud knows (IPs, endpoints, certificates) appear as `<computed>`.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format  # type: ignore[import-untyped]
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.stack import wait_for_rpcs

COMPUTED = "<computed>"
SECRET = "[secret]"
SECRET_PLACEHOLDER = "[secure value: decrypted only by the Pulumi CLI]"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

# Outputs the cloud computes, by resource type: what the mock engine returns for them.
_COMPUTED_OUTPUTS: dict[str, dict[str, Any]] = {
    "gcp:container/cluster:Cluster": {"endpoint": COMPUTED, "masterAuth": {"clusterCaCertificate": COMPUTED}},
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


class OfflineMocks(pulumi.runtime.Mocks):
    """What the mock engine returns: inputs as state, plus placeholders for cloud-computed outputs."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        state.update(_COMPUTED_OUTPUTS.get(args.typ, {}))
        if args.typ == "gcp:compute/address:Address":
            state["address"] = args.inputs.get("address") or COMPUTED  # pinned, or chosen by GCP
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, None


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


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """Keeps every RegisterResource request: the options mock arguments do not carry."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(Registration(
                urn=normalize_urn(response.urn), type=request.type, name=request.name,
                parent=normalize_urn(request.parent),
                provider=normalize_urn(request.provider.rsplit("::", 1)[0]),  # "<urn>::<id>"
                protect=bool(request.protect),
                dependencies=tuple(sorted(normalize_urn(d) for d in request.dependencies)),
                ignore_changes=tuple(request.ignoreChanges), custom=bool(request.custom),
                inputs=_wire(json_format.MessageToDict(request.object)),
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
    project = yaml.safe_load(project_file.read_text())["name"]
    values = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
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


def run(project_dir: Path, stack: str) -> PreviewResult:
    project, config, secrets = read_stack_config(project_dir, stack)
    program = project_dir / "__main__.py"
    return asyncio.run(_run(program, project, stack, config, secrets))


async def _run(program: Path, project: str, stack: str, config: dict[str, str], secrets: list[str]) -> PreviewResult:
    # A previous run in this process may have stopped on an error with RPCs outstanding; waiting
    # on them would hang this one (what `@pulumi.runtime.test` clears too).
    settings = pulumi.runtime.settings.SETTINGS
    settings.rpc_manager.clear()
    settings.outputs.clear()
    pulumi.runtime.set_all_config(config, secrets)
    monitor = _RecordingMonitor(OfflineMocks())
    pulumi.runtime.set_mocks(OfflineMocks(), project=project, stack=stack, preview=False, monitor=monitor)
    sys.path.insert(0, str(program.parent))
    try:
        runpy.run_path(str(program), run_name="__main__")
        await wait_for_rpcs()
    finally:
        sys.path.remove(str(program.parent))
    root = pulumi.runtime.settings.get_root_resource()
    outputs = {name: await _resolve(value) for name, value in sorted(getattr(root, "outputs", {}).items())}
    return PreviewResult(stack, project, monitor.registrations, outputs)


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
            "dependencies": list(r.dependencies), "ignoreChanges": list(r.ignore_changes), "inputs": r.inputs,
        }
        for r in sorted(result.registrations, key=lambda r: r.urn)
    }
    return json.dumps({"stack": result.stack, "resources": resources, "outputs": result.outputs},
                      indent=1, sort_keys=True) + "\n"
