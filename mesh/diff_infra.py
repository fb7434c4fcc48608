"""The Pulumi side of a change: each side's program run under the mock engine, resources compared.

Both sides run the current program (this checkout's `mesh`), each with its own manifest and stack
file, so the comparison shows what the *manifest and configuration* change does to resources outside
the mesh objects: networks, clusters, node pools, PKI, control planes. A change to the program's code
itself shows only in a real `pulumi preview --diff`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from mesh import preview
from mesh.diff import FieldChange, field_changes, resource_kind, show

# Changing these re-creates a GKE cluster (the provider marks them ForceNew): flagged as destructive.
CLUSTER_REPLACING = ("name", "location", "network", "subnetwork", "networkingMode", "datapathProvider",
                     "ipAllocationPolicy", "privateClusterConfig.enablePrivateNodes",
                     "privateClusterConfig.masterIpv4CidrBlock", "project")
ROOT_CERT = "tls:index/selfSignedCert:SelfSignedCert"
ROOT_KEY = "tls:index/privateKey:PrivateKey"
INTERMEDIATE = "tls:index/locallySignedCert:LocallySignedCert"
CA_TYPES = (ROOT_CERT, INTERMEDIATE)
# terraform-provider-tls (under pulumi-tls) marks every input of tls_private_key and
# tls_self_signed_cert RequiresReplace, except early_renewal_hours, which only moves `ready_for_renewal`.
ROOT_IN_PLACE = ("earlyRenewalHours",)
ROOT_WHY = ("every cluster's workload certificates chain to the root, so cross-cluster mTLS breaks until all "
            "clusters trust the new one; rotate with two roots instead (both in meshConfig.caCertificates, "
            "then retire the old)")


@dataclass(frozen=True)
class ResourceChange:
    urn: str
    type: str
    name: str
    action: str  # added | removed | changed | replaced (a rename: one removed, one added in its place)
    fields: tuple[str, ...] = ()  # the inputs that change, as paths
    destructive: str | None = None  # why, when it deletes or replaces something that matters
    changes: tuple[FieldChange, ...] = ()  # the same, with values: before → after, list members
    replaces: str | None = None  # for `replaced`: the name of the resource it takes over from


def side_project(root: Path, stack: str, manifest: Path, stack_file: Path, scratch: Path) -> Path:
    project = scratch / f"project-{len(list(scratch.iterdir()))}"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(root / name, project / name)
    import yaml

    config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    config["mesh:manifest"] = str(manifest.resolve())
    (project / f"Pulumi.{stack}.yaml").write_text(json.dumps({"config": config}))
    return project


def stack_file_at(side: str, root: Path, stack: str, scratch: Path) -> Path:
    """`Pulumi.<stack>.yaml` of a side: the working tree's for a path, the ref's for a git ref."""
    if Path(side).exists():
        return root / f"Pulumi.{stack}.yaml"
    ref = side.partition(":")[0]
    shown = subprocess.run(["git", "-C", str(root), "show", f"{ref}:Pulumi.{stack}.yaml"], capture_output=True)
    target = scratch / f"Pulumi.{stack}.{ref.replace('/', '_')}.yaml"
    target.write_bytes(shown.stdout if shown.returncode == 0 else (root / f"Pulumi.{stack}.yaml").read_bytes())
    return target


def run_side(root: Path, stack: str, manifest: Path, side: str) -> preview.PreviewResult:
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        stack_file = stack_file_at(side, root, stack, scratch)
        return preview.run(side_project(root, stack, manifest, stack_file, scratch), stack)


def compare(before: preview.PreviewResult, after: preview.PreviewResult) -> list[ResourceChange]:
    old = {r.urn: r for r in before.registrations if _infrastructure(r)}
    new = {r.urn: r for r in after.registrations if _infrastructure(r)}
    root = _root_change(_root(before), _root(after))
    changes = _pair_renames(list(_changes(old, new)), old, new)
    if root is None:
        return changes
    return [replace(c, destructive=root) if _carries_root(c) else c for c in changes]


def _infrastructure(registration: preview.Registration) -> bool:
    """Everything but the compiled mesh objects, which the object diff already shows."""
    return "fleet-mesh:mesh:Config" not in registration.urn


def _changes(old: dict[str, preview.Registration], new: dict[str, preview.Registration]) -> Iterator[ResourceChange]:
    for urn in sorted(set(old) | set(new)):
        registration = new.get(urn) or old[urn]
        if urn not in new:
            yield ResourceChange(urn, registration.type, registration.name, "removed",
                                 destructive=_why_destructive(registration, "removed", ()))
        elif urn not in old:
            yield ResourceChange(urn, registration.type, registration.name, "added")
        else:
            fields = tuple(_changed_paths(old[urn].inputs, new[urn].inputs, ""))
            if fields or old[urn].protect != new[urn].protect:
                values = tuple(field_changes(old[urn].inputs, new[urn].inputs, ""))
                if old[urn].protect != new[urn].protect:
                    values += (FieldChange("protect", old[urn].protect, new[urn].protect),)
                yield ResourceChange(urn, registration.type, registration.name, "changed", fields,
                                     _why_destructive(registration, "changed", fields), values)


def _pair_renames(changes: list[ResourceChange], old: dict[str, preview.Registration],
                  new: dict[str, preview.Registration]) -> list[ResourceChange]:
    """A resource that leaves and one that arrives, alone of their type under the same parent (a Helm
    release named after its revision, `<cluster>-istiod-<rev>`), are one replacement: Pulumi creates
    the new one and deletes the old, and the reader wants what differs between them."""
    def slot(change: ResourceChange) -> tuple[str, str]:
        return change.type, (new.get(change.urn) or old[change.urn]).parent

    by_slot: dict[tuple[str, str, str], list[ResourceChange]] = {}
    for change in changes:
        if change.action in ("removed", "added") and change.destructive is None:
            by_slot.setdefault((change.action, *slot(change)), []).append(change)
    pairs: dict[str, ResourceChange | None] = {}  # new urn → the old change; old urn → None
    for (action, type_, parent), arrived in by_slot.items():
        left = by_slot.get(("removed", type_, parent), [])
        if action == "added" and len(arrived) == 1 and len(left) == 1:
            pairs[left[0].urn], pairs[arrived[0].urn] = None, left[0]
    out = []
    for change in changes:
        if change.urn not in pairs:
            out.append(change)
        elif (gone := pairs[change.urn]) is not None:
            before, after = old[gone.urn].inputs, new[change.urn].inputs
            out.append(replace(change, action="replaced", replaces=gone.name,
                               fields=tuple(_changed_paths(before, after, "")),
                               changes=tuple(field_changes(before, after, ""))))
    return out


def groups(changes: list[ResourceChange]) -> list[list[ResourceChange]]:
    """Changes that are the same edit to resources of one type (a chart version on every release)
    together, in first-seen order; anything destructive, added or removed stays on its own."""
    out: dict[object, list[ResourceChange]] = {}
    for change in changes:
        key: object = change.urn
        if change.action in ("changed", "replaced") and change.destructive is None:
            key = (change.type, change.action, _signature(change))
        out.setdefault(key, []).append(change)
    return list(out.values())


def _signature(change: ResourceChange) -> tuple[tuple[str, str, str, bool], ...]:
    return tuple((f.path, json.dumps(f.before, sort_keys=True), json.dumps(f.after, sort_keys=True), f.members)
                 for f in change.changes)


def summary(changes: list[ResourceChange], most: int = 3) -> str:
    """`NodePool (1); Release (24): version 1.31.1 → 1.31.2` — the edits every resource of a kind
    shares (else all of them, when few), so a version bump reads as one."""
    by_kind: dict[str, list[ResourceChange]] = {}
    for change in changes:
        by_kind.setdefault(resource_kind(change.type), []).append(change)
    parts = []
    for kind, members in sorted(by_kind.items()):
        edits = [{f"{f.path} {show(f.before, 40)} → {show(f.after, 40)}" for f in c.changes
                  if not f.members and not isinstance(f.before, (dict, list)) and not isinstance(f.after, (dict, list))}
                 for c in members]
        shared = sorted(set.intersection(*edits))
        every = sorted(set.union(*edits))
        shown = shared or (every if len(every) <= most else [])
        part = f"{kind} ({len(members)})"
        if shown:
            part += ": " + ", ".join(shown[:most]) + (", …" if len(shown) > most or len(every) > len(shown) else "")
        parts.append(part)
    return "; ".join(parts)


def _why_destructive(registration: preview.Registration, action: str, fields: tuple[str, ...]) -> str | None:
    if registration.type == "gcp:container/cluster:Cluster":
        if action == "removed":
            return f"GKE cluster {registration.name} would be deleted"
        replacing = [f for f in fields if any(f == p or f.startswith(p + ".") for p in CLUSTER_REPLACING)]
        if replacing:
            return f"GKE cluster {registration.name} would be replaced (changes {', '.join(replacing)})"
    if registration.type in CA_TYPES and action == "removed":
        return f"certificate authority {registration.name} would be removed: workloads it signed lose trust"
    if (registration.type == "kubernetes:helm.sh/v3:Release" and action == "removed"
            and str(registration.inputs.get("chart", "")).endswith("istiod")):
        return (f"istiod release {registration.inputs.get('name', registration.name)} would be removed: pods still "
                "injected by that revision lose their control plane (no config, no certificate renewal) until "
                "restarted on another; keep it in mesh:istioRevisions until its workloads have moved")
    return None


# ----------------------------------------------------------------------------------------- root CA


@dataclass(frozen=True)
class _Root:
    kind: str  # generated | provided | none
    name: str = ""  # the generated root certificate's resource name
    inputs: tuple[tuple[str, object], ...] = ()  # generated: (path, value) of the certificate and its key
    certificate: object = None  # provided: the PEM the intermediates are signed under


def _is_root_key(registration: preview.Registration | ResourceChange) -> bool:
    return registration.type == ROOT_KEY and registration.name.endswith("-root-key")


def _root(result: preview.PreviewResult) -> _Root:
    """Which root the program declares: its own self-signed one, or `mesh:rootCaCertificate`."""
    certificates = [r for r in result.registrations if r.type == ROOT_CERT]
    if certificates:
        keys = [r for r in result.registrations if _is_root_key(r)]
        inputs = [(f"{r.name}.{k}", v) for r in certificates + keys for k, v in sorted(r.inputs.items())
                  if k not in ROOT_IN_PLACE]
        return _Root("generated", certificates[0].name, tuple(inputs))
    signed = sorted({json.dumps(r.inputs.get("caCertPem")) for r in result.registrations if r.type == INTERMEDIATE})
    if not signed:
        return _Root("none")
    return _Root("provided", certificate=signed[0])


def _root_change(before: _Root, after: _Root) -> str | None:
    if "none" in (before.kind, after.kind) or before == after:
        return None
    if before.kind == after.kind == "generated":
        old, new = dict(before.inputs), dict(after.inputs)
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return f"root CA {after.name} would be replaced (changes {', '.join(changed)}): {ROOT_WHY}"
    if before.kind == after.kind == "provided":
        return f"root CA changes (mesh:rootCaCertificate is another certificate): {ROOT_WHY}"
    if after.kind == "provided":
        return f"root CA switches from the generated {before.name} to mesh:rootCaCertificate: {ROOT_WHY}"
    return f"root CA switches from mesh:rootCaCertificate to a generated {after.name}: {ROOT_WHY}"


def _carries_root(change: ResourceChange) -> bool:
    """The resources a root change shows on: the root and its key, else the intermediates it signs."""
    return change.type == ROOT_CERT or _is_root_key(change) or (
        change.type == INTERMEDIATE and change.action == "changed" and "caCertPem" in change.fields)


def _changed_paths(before: object, after: object, path: str) -> Iterator[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                yield from _changed_paths(before.get(key), after.get(key), f"{path}.{key}" if path else key)
    elif before != after:
        yield path
