"""What a change does: two manifests compiled and compared, as intent, blast radius and objects.

Each side is a manifest path, or a git ref (`main`, `HEAD~1`, `origin/main:stacks/prod`) whose tree is
exported to a temporary folder. Both sides are compiled with the same options; objects are matched
by (kind, namespace, name) — stable identities — so a change shows only what it causes.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh.compile import compile_fleet
from mesh.manifest import load
from mesh.model import Placement, World

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
    sizes: list[str] = field(default_factory=list)  # how the change moves what istiod and proxies hold

    @property
    def changed(self) -> bool:
        return bool(self.intent or self.objects or self.resources)

    def add_resources(self, changes: list[Any]) -> None:
        """Fold in the Pulumi side: destructive resource changes go first among the intent lines."""
        from mesh import diff_infra

        self.resources = changes
        # One root change shows on the root, its key and every intermediate: said once.
        flagged = list(dict.fromkeys(c.destructive for c in changes if c.destructive))
        self.destructive = flagged + self.destructive
        self.intent = flagged + self.intent
        summary = diff_infra.summary([c for c in changes if not c.destructive])
        if summary:
            self.intent.append(f"Pulumi resources outside the mesh change: {summary}")

    def blast_radius(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for change in self.objects:
            counts = out.setdefault(change.cluster, {"added": 0, "changed": 0, "removed": 0})
            counts[change.action] += 1
        return dict(sorted(out.items()))


def resource_kind(token: str) -> str:
    """`gcp:container/nodePool:NodePool` → `NodePool`."""
    return token.rsplit(":", 1)[-1]


_PLAIN = re.compile(r"[\w.:/@<>+*-]+")


def show(value: Any, limit: int = 120) -> str:
    """A value for people: versions, ranges and names bare (`1.31.1 → 1.31.2`), anything else as JSON
    (so `"80"` stays apart from `80`), cut at `limit` characters."""
    if isinstance(value, str) and _PLAIN.fullmatch(value) and not _is_json_scalar(value):
        text = value
    else:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_json_scalar(text: str) -> bool:
    try:
        return not isinstance(json.loads(text), str)
    except ValueError:
        return False


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


def _shown(side: str) -> str | None:
    return None if Path(side).exists() else (side if ":" in side else f"{side}:stacks/prod")


def diff_sides(base: str, head: str, repo: Path, stack: str | None = None,
               progress: Callable[[str], None] = lambda stage: None) -> Diff:
    """Compare two sides; with `stack`, also run the Pulumi program for both (mesh/diff_infra.py).
    `progress` hears each stage as it starts (the CLI shows them on a terminal)."""
    with tempfile.TemporaryDirectory() as scratch:
        progress(f"reading {base} and {head}")
        manifests = materialize(base, repo, Path(scratch)), materialize(head, repo, Path(scratch))
        # Errors name the side they come from: a path as given, a git ref as `ref:path`.
        worlds = (load(manifests[0], shown_as=_shown(base)).world, load(manifests[1], shown_as=_shown(head)).world)
        progress("compiling and comparing both sides")
        result = diff_worlds(*worlds)
        if stack is not None:
            from mesh import diff_infra

            needed = [repo / "Pulumi.yaml", repo / "__main__.py", repo / f"Pulumi.{stack}.yaml"]
            missing = [str(p) for p in needed if not p.is_file()]
            if missing:
                raise DiffError(f"cannot compare Pulumi resources: {', '.join(missing)} not found "
                                "(run from the project root, choose --stack, or use --no-pulumi)")

            progress(f"running the Pulumi program (mock engine) for {base}")
            before = diff_infra.run_side(repo, stack, manifests[0], base)
            progress(f"running the Pulumi program (mock engine) for {head}")
            after = diff_infra.run_side(repo, stack, manifests[1], head)
            result.add_resources(diff_infra.compare(before, after))
    return result


def diff_worlds(before: World, after: World) -> Diff:
    result = Diff(worlds=(before, after))
    old, new = compile_fleet(before), compile_fleet(after)
    for cluster in sorted(set(old) | set(new)):
        result.objects += _object_changes(cluster, _index(old.get(cluster, [])), _index(new.get(cluster, [])))
    result.destructive, result.intent = _intent(before, after, result.objects)
    result.sizes = _size_changes(old, new, sorted({c.cluster for c in result.objects}))
    return result


def _size_changes(old: Mapping[str, list[dict[str, Any]]], new: Mapping[str, list[dict[str, Any]]],
                  touched: list[str]) -> list[str]:
    """One line per touched cluster whose estimated istiod or largest-proxy size moves (mesh size)."""
    from mesh import size

    lines = []
    for cluster in touched:
        was, now = (size.measure({cluster: side[cluster]})[0] if cluster in side else None for side in (old, new))
        if was is None or now is None:
            continue  # an added or removed cluster: its objects say it all
        before_proxy = max((w.proxy_mb for w in was.workloads), default=size.ENVOY_BASE_MB)
        after_proxy = max((w.proxy_mb for w in now.workloads), default=size.ENVOY_BASE_MB)
        moved = {(w.namespace, w.hosts) for w in now.workloads} ^ {(w.namespace, w.hosts) for w in was.workloads}
        if round(was.istiod_mb) == round(now.istiod_mb) and round(before_proxy) == round(after_proxy) and not moved:
            continue
        hosts = {w.namespace: w.hosts for w in was.workloads}
        grown = ", ".join(f"{w.namespace} {hosts.get(w.namespace, 0)} → {w.hosts}" for w in now.workloads
                          if hosts.get(w.namespace, 0) != w.hosts)
        lines.append(f"{cluster}: istiod ≈ {was.istiod_mb:,.0f} → {now.istiod_mb:,.0f} MB, largest proxy ≈ "
                     f"{before_proxy:,.0f} → {after_proxy:,.0f} MB" + (f"; imported hosts: {grown}" if grown else ""))
    return lines


def _index(objects: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects}


def _object_changes(cluster: str, old: Mapping[Key, Any], new: Mapping[Key, Any]) -> Iterator[ObjectChange]:
    for key in sorted(set(old) | set(new)):
        if key not in new:
            yield ObjectChange(cluster, *key, "removed")
        elif key not in old:
            yield ObjectChange(cluster, *key, "added")
        elif old[key] != new[key]:
            yield ObjectChange(cluster, *key, "changed", tuple(field_changes(old[key], new[key], "")))


def field_changes(before: Any, after: Any, path: str) -> Iterator[FieldChange]:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            if before.get(key) != after.get(key):
                yield from field_changes(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
    elif isinstance(before, list) and isinstance(after, list):
        yield from _list_changes(before, after, path)
    elif before != after:
        yield FieldChange(path, before, after)


# What names an element of a list of objects, tried in order; the first that every element has (and
# that is unique on both sides) wins. Endpoints by address and network, subsets and named ports or
# routes by name, ports by number, routes by match, gateway servers by port.
IDENTITIES: tuple[tuple[str, ...], ...] = (("name",), ("address", "network"), ("number",), ("match",), ("port",))


def _identity(before: list[Any], after: list[Any]) -> tuple[str, ...] | None:
    items = before + after
    if not items or not all(isinstance(v, dict) for v in items):
        return None
    for keys in IDENTITIES:
        if all(keys[0] in v for v in items):
            ids = [[_ident(v, keys) for v in side] for side in (before, after)]
            if all(len(set(side)) == len(side) for side in ids):
                return keys
    return None


def _ident(value: dict[str, Any], keys: tuple[str, ...]) -> str:
    return json.dumps([value.get(k) for k in keys], sort_keys=True)


def _label(value: dict[str, Any], keys: tuple[str, ...], index: int) -> str:
    """`[v2]`, `[10.0.0.5/core-use1-b]`: the element's identity where it is short and scalar."""
    parts = [value.get(k) for k in keys if value.get(k) is not None]
    if parts and all(isinstance(p, (str, int)) for p in parts):
        return "[" + "/".join(map(str, parts)) + "]"
    return f"[{index}]"


def _list_changes(before: list[Any], after: list[Any], path: str) -> Iterator[FieldChange]:
    """Element by element: an added endpoint is one `+`, never every later index shifting by one."""
    keys = _identity(before, after)
    if keys is not None:
        old = {_ident(v, keys): v for v in before}
        new_ids = {_ident(v, keys) for v in after}
        gone = [v for v in before if _ident(v, keys) not in new_ids]
        came = [v for v in after if _ident(v, keys) not in old]
        inner = [change for i, v in enumerate(after) if _ident(v, keys) in old
                 for change in field_changes(old[_ident(v, keys)], v, f"{path}{_label(v, keys, i)}")]
    elif len(before) == len(after) and any(isinstance(v, (dict, list)) for v in before + after):
        # Same length and nothing to match by: position is the identity (rules, routes, egress).
        gone, came = [], []
        inner = [change for i, (old_v, new_v) in enumerate(zip(before, after, strict=True)) if old_v != new_v
                 for change in field_changes(old_v, new_v, f"{path}[{i}]")]
    else:
        # Names (hosts, principals, namespaces), or objects with no identity: members that left and came.
        gone, came, inner = [v for v in before if v not in after], [v for v in after if v not in before], []
    if gone or came:
        yield FieldChange(path, gone, came, members=True)
    yield from inner
    if not (gone or came or inner) and before != after:
        yield FieldChange(path, before, after)  # the same members in another order


# ----------------------------------------------------------------------------------------- intent


def _intent(before: World, after: World, objects: list[ObjectChange]) -> tuple[list[str], list[str]]:
    destructive: list[str] = []
    lines: list[str] = []
    for name in sorted(set(before.clusters) - set(after.clusters)):
        destructive.append(f"cluster {name} is removed: its GKE cluster, control plane and every object on it "
                           "would be deleted (the cluster is protected; `pulumi up` stops until it is unprotected)")
    for name in sorted(set(before.fleet.networks) - set(after.fleet.networks)):
        destructive.append(f"network {name} is removed")
    if before.fleet.trust_domain != after.fleet.trust_domain:
        old_domain, new_domain = before.fleet.trust_domain, after.fleet.trust_domain
        destructive.append(f"trust domain changes {old_domain} → {new_domain}: every identity "
                           f"(spiffe://{old_domain}/…) and authorization policy changes at once, and workloads on "
                           "the old and the new domain reject each other until every cluster has moved; list "
                           f"{old_domain} in meshConfig.trustDomainAliases first")
    destructive += list(_namespace_departures(after, objects))
    lines += [f"cluster {n} is added ({after.clusters[n].region}, network {after.clusters[n].network}, tier "
              f"{after.clusters[n].tier})" for n in sorted(set(after.clusters) - set(before.clusters))]
    lines += list(_call_changes(before, after))
    lines += list(_external_changes(before, after))
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


def _external_calls(world: World) -> dict[tuple[str, str], str]:
    """(caller, external) → `host:port` as said in an intent line; allWorkloads ones under caller `*`."""
    out: dict[tuple[str, str], str] = {}
    for call in world.external_calls:
        external = world.externals[call.external]
        ports = call.ports or tuple(p.number for p in external.ports)
        where = f"{'/'.join(call.hosts)}:{','.join(map(str, ports))}"
        how = "external, via the egress gateway" if external.egress_gateway else "external"
        out[("*" if external.all_workloads else call.caller, call.external)] = f"{where} ({how})"
    return out


def _external_changes(before: World, after: World) -> Iterator[str]:
    """Calls out of the mesh added, removed or changed; destinations approved or withdrawn; egress gateways."""
    old, new = _external_calls(before), _external_calls(after)
    for name in sorted(set(after.externals) - set(before.externals)):
        ext = after.externals[name]
        who = "every workload" if ext.all_workloads else f"tiers {', '.join(ext.tiers)}"
        yield f"external destination {name} ({', '.join(ext.hosts)}) is approved for {who}"
    for name in sorted(set(before.externals) - set(after.externals)):
        yield f"external destination {name} is withdrawn"
    for key in sorted(set(new) | set(old)):
        caller = "every workload" if key[0] == "*" else key[0]
        if key not in old:
            yield f"{caller} may now {'reach' if key[0] == '*' else 'call'} {new[key]}"
        elif key not in new:
            yield f"{caller} may no longer {'reach' if key[0] == '*' else 'call'} {old[key]}"
        elif old[key] != new[key]:
            yield f"{caller} → {key[1]}: {old[key]} → {new[key]}"
    from mesh.compile import egress

    was, now = set(egress.gateway_clusters(before)), set(egress.gateway_clusters(after))
    yield from (f"{c} now needs an egress gateway (istio-egress/istio-egressgateway)" for c in sorted(now - was))
    yield from (f"{c} no longer needs its egress gateway" for c in sorted(was - now))


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
        weights = _weight_change(name, old, new)
        if weights:
            yield weights
        for cluster in sorted(set(old) & set(new)):
            if old[cluster].role != new[cluster].role:
                yield f"{name} in {cluster}: {old[cluster].role} → {new[cluster].role}"


def _weight_change(name: str, old: Mapping[str, Placement], new: Mapping[str, Placement]) -> str | None:
    """One line per service: a traffic shift reads as the split it was and the split it becomes."""
    was = {c: p.weight for c, p in old.items() if p.weight is not None}
    now = {c: p.weight for c, p in new.items() if p.weight is not None}
    if was == now:
        return None
    if not now:
        where = ", ".join(c if p.role == "active" else f"{c} ({p.role})" for c, p in sorted(new.items()))
        return f"{name}: weights removed, now active in {where}" if all(
            p.role == "active" for p in new.values()) else f"{name}: weights removed, now in {where}"
    if not was:
        return f"{name}: weights set, " + ", ".join(f"{c} {w}" for c, w in sorted(now.items()))
    parts = [f"{c} {was[c]} → {now[c]}" for c in sorted(set(was) & set(now)) if was[c] != now[c]]
    parts += [f"{c} {now[c]} (new)" for c in sorted(set(now) - set(was))]
    parts += [f"{c} {was[c]} (gone)" for c in sorted(set(was) - set(now))]
    return f"{name}: " + ", ".join(parts)


def _namespace_departures(after: World, objects: list[ObjectChange]) -> Iterator[str]:
    """A namespace the mesh stops managing in a cluster that stays. Deleting it would take the team's
    Deployments, Secrets and volumes with it, so Pulumi is set to let go of it instead."""
    for change in objects:  # already sorted by cluster, then name
        if change.kind == "Namespace" and change.action == "removed" and change.cluster in after.clusters:
            yield (f"Namespace {change.name} leaves {change.cluster}: no longer managed; Pulumi keeps it "
                   "(retainOnDelete) — delete it by hand once empty")


def _exposure_changes(before: World, after: World) -> Iterator[str]:
    def exposed(world: World) -> set[tuple[str, str]]:
        return {(c, world.services[s].host) for c, view in world.views.items() for s in view.running
                if world.has_callers_elsewhere(s, c)}

    old, new = exposed(before), exposed(after)
    for cluster, host in sorted(new - old):
        yield f"{cluster}'s east-west gateway now exposes {host}"
    for cluster, host in sorted(old - new):
        yield f"{cluster}'s east-west gateway no longer exposes {host}"
