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
from dataclasses import dataclass
from pathlib import Path

from mesh import preview

# Changing these re-creates a GKE cluster (the provider marks them ForceNew): flagged as destructive.
CLUSTER_REPLACING = ("name", "location", "network", "subnetwork", "networkingMode", "datapathProvider",
                     "ipAllocationPolicy", "privateClusterConfig.enablePrivateNodes",
                     "privateClusterConfig.masterIpv4CidrBlock", "project")
CA_TYPES = ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert")


@dataclass(frozen=True)
class ResourceChange:
    urn: str
    type: str
    name: str
    action: str  # added | removed | changed
    fields: tuple[str, ...] = ()
    destructive: str | None = None  # why, when it deletes or replaces something that matters


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
    return list(_changes(old, new))


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
                yield ResourceChange(urn, registration.type, registration.name, "changed", fields,
                                     _why_destructive(registration, "changed", fields))


def _why_destructive(registration: preview.Registration, action: str, fields: tuple[str, ...]) -> str | None:
    if registration.type == "gcp:container/cluster:Cluster":
        if action == "removed":
            return f"GKE cluster {registration.name} would be deleted"
        replacing = [f for f in fields if any(f == p or f.startswith(p + ".") for p in CLUSTER_REPLACING)]
        if replacing:
            return f"GKE cluster {registration.name} would be replaced (changes {', '.join(replacing)})"
    if registration.type in CA_TYPES and action == "removed":
        return f"certificate authority {registration.name} would be removed: workloads it signed lose trust"
    return None


def _changed_paths(before: object, after: object, path: str) -> Iterator[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                yield from _changed_paths(before.get(key), after.get(key), f"{path}.{key}" if path else key)
    elif before != after:
        yield path
