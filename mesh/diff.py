"""What a change does: two manifests compiled and compared, as intent, blast radius and objects.

Each side is a manifest path, or a git ref (`main`, `HEAD~1`, `origin/main:stacks/prod`) whose tree is
exported to a temporary folder. Both sides are compiled with the same options; objects are matched
by (kind, namespace, name) — stable identities — so a change shows only what it causes.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh.compile import compile_fleet
from mesh.manifest import load
from mesh.model import World

Key = tuple[str, str, str]  # kind, namespace, name


class DiffError(Exception):
    """A side could not be read (unknown ref, not a git repository)."""


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any  # for `members`: the items removed from a list
    after: Any  # for `members`: the items added
    members: bool = False


@dataclass(frozen=True)
class ObjectChange:
    cluster: str
    kind: str
    namespace: str
    name: str
    action: str  # added | removed | changed
    fields: tuple[FieldChange, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


@dataclass
class Diff:
    intent: list[str] = field(default_factory=list)  # plain-language lines, destructive ones first
    destructive: list[str] = field(default_factory=list)
    objects: list[ObjectChange] = field(default_factory=list)
    resources: list[Any] = field(default_factory=list)  # diff_infra.ResourceChange, when compared
    worlds: tuple[World, World] | None = None  # before and after, for pictures

    @property
    def changed(self) -> bool:
        return bool(self.intent or self.objects or self.resources)

    def add_resources(self, changes: list[Any]) -> None:
        """Fold in the Pulumi side: destructive resource changes go first among the intent lines."""
        self.resources = changes
        flagged = [c.destructive for c in changes if c.destructive]
        self.destructive = flagged + self.destructive
        self.intent = flagged + self.intent
        others = sorted({_resource_kind(c.type) for c in changes if not c.destructive})
        if others:
            self.intent.append(f"Pulumi resources outside the mesh change: {', '.join(others)}")

    def blast_radius(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for change in self.objects:
            counts = out.setdefault(change.cluster, {"added": 0, "changed": 0, "removed": 0})
            counts[change.action] += 1
        return dict(sorted(out.items()))


def _resource_kind(token: str) -> str:
    """`gcp:container/nodePool:NodePool` → `NodePool`."""
    return token.rsplit(":", 1)[-1]


# ----------------------------------------------------------------------------------------- sides


def materialize(side: str, repo: Path, scratch: Path) -> Path:
    """A manifest path for `side`: an existing path as is, else `<ref>[:<path>]` exported from git."""
    if Path(side).exists():
        return Path(side)
    ref, _, inner = side.partition(":")
    inner = inner or "stacks/prod"
    try:
        archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", ref, inner],
                                 capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.decode().strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        raise DiffError(f"cannot read {inner} at git ref {ref!r}: {detail}") from None
    target = scratch / ref.replace("/", "_")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / inner


def default_base(repo: Path) -> str:
    for main in ("main", "origin/main", "master"):
        result = subprocess.run(["git", "-C", str(repo), "merge-base", "HEAD", main], capture_output=True, text=True)
        if result.returncode == 0:
            return result.stdout.strip()
    raise DiffError("no main branch to compare with; give BASE explicitly")


def diff_sides(base: str, head: str, repo: Path, stack: str | None = None) -> Diff:
    """Compare two sides; with `stack`, also run the Pulumi program for both (mesh/diff_infra.py)."""
    with tempfile.TemporaryDirectory() as scratch:
        manifests = materialize(base, repo, Path(scratch)), materialize(head, repo, Path(scratch))
        result = diff_worlds(load(manifests[0]).world, load(manifests[1]).world)
        if stack is not None:
            from mesh import diff_infra

            needed = [repo / "Pulumi.yaml", repo / "__main__.py", repo / f"Pulumi.{stack}.yaml"]
            missing = [str(p) for p in needed if not p.is_file()]
            if missing:
                raise DiffError(f"cannot compare Pulumi resources: {', '.join(missing)} not found "
                                "(run from the project root, choose --stack, or use --no-pulumi)")

            before = diff_infra.run_side(repo, stack, manifests[0], base)
            after = diff_infra.run_side(repo, stack, manifests[1], head)
            result.add_resources(diff_infra.compare(before, after))
    return result


def diff_worlds(before: World, after: World) -> Diff:
    result = Diff(worlds=(before, after))
    result.destructive, result.intent = _intent(before, after)
    old, new = compile_fleet(before), compile_fleet(after)
    for cluster in sorted(set(old) | set(new)):
        result.objects += _object_changes(cluster, _index(old.get(cluster, [])), _index(new.get(cluster, [])))
    return result


def _index(objects: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects}


def _object_changes(cluster: str, old: Mapping[Key, Any], new: Mapping[Key, Any]) -> Iterator[ObjectChange]:
    for key in sorted(set(old) | set(new)):
        if key not in new:
            yield ObjectChange(cluster, *key, "removed")
        elif key not in old:
            yield ObjectChange(cluster, *key, "added")
        elif old[key] != new[key]:
            yield ObjectChange(cluster, *key, "changed", tuple(_field_changes(old[key], new[key], "")))


def _field_changes(before: Any, after: Any, path: str) -> Iterator[FieldChange]:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            if before.get(key) != after.get(key):
                yield from _field_changes(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
    elif isinstance(before, list) and isinstance(after, list) and all(
            not isinstance(v, (dict, list)) for v in before + after):
        # Lists of names (hosts, principals, namespaces): what left and what came, not two long lists.
        gone, came = [v for v in before if v not in after], [v for v in after if v not in before]
        if gone or came:
            yield FieldChange(path, gone, came, members=True)
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (old, new) in enumerate(zip(before, after, strict=True)):
            if old != new:
                yield from _field_changes(old, new, f"{path}[{i}]")
    elif before != after:
        yield FieldChange(path, before, after)


# ----------------------------------------------------------------------------------------- intent


def _intent(before: World, after: World) -> tuple[list[str], list[str]]:
    destructive: list[str] = []
    lines: list[str] = []
    for name in sorted(set(before.clusters) - set(after.clusters)):
        destructive.append(f"cluster {name} is removed: its GKE cluster, control plane and every object on it "
                           "would be deleted (the cluster is protected; `pulumi up` stops until it is unprotected)")
    for name in sorted(set(before.fleet.networks) - set(after.fleet.networks)):
        destructive.append(f"network {name} is removed")
    if before.fleet.trust_domain != after.fleet.trust_domain:
        destructive.append(f"trust domain changes {before.fleet.trust_domain} → {after.fleet.trust_domain}: every "
                           "identity and authorization policy changes at once")
    lines += [f"cluster {n} is added ({after.clusters[n].region}, network {after.clusters[n].network}, tier "
              f"{after.clusters[n].tier})" for n in sorted(set(after.clusters) - set(before.clusters))]
    lines += list(_call_changes(before, after))
    lines += list(_placement_changes(before, after))
    lines += list(_exposure_changes(before, after))
    return destructive, destructive + lines


def _calls(world: World) -> dict[tuple[str, str], tuple[int, ...] | None]:
    return {(c.caller, c.callee): c.ports for c in world.calls}


def _call_changes(before: World, after: World) -> Iterator[str]:
    old, new = _calls(before), _calls(after)
    for caller, callee in sorted(set(new) - set(old)):
        clusters = ", ".join(after.clusters_of(caller))
        yield f"{caller} may now call {callee}{_ports(new[(caller, callee)])} (from {clusters})"
    for caller, callee in sorted(set(old) - set(new)):
        yield f"{caller} may no longer call {callee}{_ports(old[(caller, callee)])}"
    for pair in sorted(set(old) & set(new)):
        if old[pair] != new[pair]:
            yield f"{pair[0]} → {pair[1]}: ports {_ports(old[pair]) or ' all'} → {_ports(new[pair]) or ' all'}"
    for name in sorted(set(before.services) - set(after.services)):
        yield f"service {name} is removed"


def _ports(ports: tuple[int, ...] | None) -> str:
    return f" on port {', '.join(map(str, ports))}" if ports else ""


def _placement_changes(before: World, after: World) -> Iterator[str]:
    for name in sorted(set(after.services)):
        new = {p.cluster: p for p in after.placements[name]}
        if name not in before.services:
            yield f"service {name} is placed in {', '.join(new)}"
            continue
        old = {p.cluster: p for p in before.placements[name]}
        gained, lost = sorted(set(new) - set(old)), sorted(set(old) - set(new))
        if gained and lost:
            yield f"{name} moves from {', '.join(lost)} to {', '.join(gained)}"
        elif gained:
            yield f"{name} now also runs in {', '.join(gained)}"
        elif lost:
            yield f"{name} no longer runs in {', '.join(lost)}"
        for cluster in sorted(set(old) & set(new)):
            if old[cluster].weight != new[cluster].weight:
                yield f"{name} in {cluster}: weight {old[cluster].weight} → {new[cluster].weight}"
            if old[cluster].role != new[cluster].role:
                yield f"{name} in {cluster}: {old[cluster].role} → {new[cluster].role}"


def _exposure_changes(before: World, after: World) -> Iterator[str]:
    def exposed(world: World) -> set[tuple[str, str]]:
        return {(c, world.services[s].host) for c, view in world.views.items() for s in view.running
                if world.has_callers_elsewhere(s, c)}

    old, new = exposed(before), exposed(after)
    for cluster, host in sorted(new - old):
        yield f"{cluster}'s east-west gateway now exposes {host}"
    for cluster, host in sorted(old - new):
        yield f"{cluster}'s east-west gateway no longer exposes {host}"
