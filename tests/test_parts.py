"""A cluster's mesh config split over several stacks (mesh:meshConfigPart): what goes where, and
the stacks that apply it."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh import preview, reshard, shards
from mesh.compile import compile_fleet
from mesh.compile.meta import IMPORTS_NAMESPACE
from mesh.infra import parts
from mesh.infra.mesh_config import resource_name
from mesh.infra.plan import INFRA_PER_CLUSTER
from mesh.manifest import load
from mesh.outputs import StackOutputs

import stack_fixture

ROOT = stack_fixture.project()
ROOT_CA = (Path(__file__).parent / "fixtures" / "root-ca.pem").read_text()
WORLD = load(ROOT / "stacks/prod").world
COMPILED = compile_fleet(WORLD)
HUB = "core-use1-a"  # the fixture's largest cluster


def identity(obj: dict[str, Any]) -> str:
    return resource_name("", obj)


def test_the_parts_hold_every_object_once_and_units_stay_whole() -> None:
    objects = COMPILED[HUB]
    namespaces = parts.service_namespaces(objects)
    for of in (2, 3, 5):
        split = parts.split(objects, of)
        assert sorted(identity(o) for p in split for o in p) == sorted(identity(o) for o in objects)
        where = {identity(o): i for i, p in enumerate(split) for o in p}
        units: dict[str | None, set[int]] = {}
        for obj in objects:
            units.setdefault(parts.unit_of(obj, namespaces), set()).add(where[identity(obj)])
        assert all(len(found) == 1 for found in units.values())  # a namespace, or an import, never torn
        assert units[None] == {0}  # the cluster's shared objects stay with the stack managing it
        shared = [o for o in objects if parts.unit_of(o, namespaces) is None]
        assert {o["metadata"]["name"] for o in shared if o["kind"] == "Namespace"} == {IMPORTS_NAMESPACE,
                                                                                       "mesh-external"}
        assert all(o["metadata"].get("namespace") in {"istio-system", "istio-ingress", "istio-egress", None}
                   for o in shared)


def test_an_imported_services_entries_move_together_and_apart_from_others() -> None:
    imports = [o for o in COMPILED[HUB] if o["metadata"].get("namespace") == IMPORTS_NAMESPACE]
    by_service: dict[str, set[str | None]] = {}
    for obj in imports:
        unit = parts.unit_of(obj, frozenset())
        by_service.setdefault(obj["metadata"]["labels"]["fleet-mesh.io/service"], set()).add(unit)
    assert all(len(units) == 1 for units in by_service.values())
    assert len({u for units in by_service.values() for u in units}) == len(by_service)


def test_one_more_part_only_takes_units_for_itself_and_new_services_move_nothing() -> None:
    objects = COMPILED[HUB]
    for of in (2, 3, 4):
        before = {identity(o): i for i, p in enumerate(parts.split(objects, of)) for o in p}
        after = {identity(o): i for i, p in enumerate(parts.split(objects, of + 1)) for o in p}
        moved = [k for k in before if before[k] != after[k]]
        assert moved and all(after[k] == of for k in moved)  # into the new part, from nowhere else
    # Objects of a service that disappears take nothing else with them.
    without = [o for o in objects if o["metadata"].get("namespace") != "shop"]
    kept = {identity(o): i for i, p in enumerate(parts.split(without, 3)) for o in p}
    full = {identity(o): i for i, p in enumerate(parts.split(objects, 3)) for o in p}
    assert all(full[k] == i for k, i in kept.items())


def test_the_fewest_parts_that_fit_are_found_or_none() -> None:
    objects = COMPILED[HUB]
    limit = len(objects) // 2 + INFRA_PER_CLUSTER + 5
    found = parts.parts_needed(objects, limit, INFRA_PER_CLUSTER, 2)
    assert found is not None
    of, sizes = found
    assert of >= 2 and max(sizes) <= limit and sum(sizes) == len(objects) + INFRA_PER_CLUSTER + 2 * (of - 1)
    smaller = parts.parts_needed(objects, limit, INFRA_PER_CLUSTER, 2)
    assert smaller == found  # deterministic
    assert of == 2 or max(len(p) for p in parts.split(objects, of - 1)) + INFRA_PER_CLUSTER > limit
    assert parts.parts_needed(objects, INFRA_PER_CLUSTER, INFRA_PER_CLUSTER, 2) is None  # shared objects alone


def _write(tmp_path: Path, limit: int) -> dict[str, dict[str, Any]]:
    proposal = shards.propose(WORLD, COMPILED, "cluster", limit)
    base = {"mesh:manifest": str(ROOT / "stacks/prod"), "mesh:istioVersion": "1.31.1",
            "mesh:ingressSourceRanges": ["198.51.100.0/25"], "mesh:rootCaCertificate": ROOT_CA,
            "mesh:rootCaKey": {"secure": "v1:not-copied"}}
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    configs = {}
    for name, text in shards.stack_files(proposal, base, "acme", "fleet-mesh", "prod").items():
        config = yaml.safe_load(text)["config"]
        if "mesh:clusters" in config:
            config["mesh:rootCaKey"] = {"secure": "v1:set-by-hand"}
        (tmp_path / name).write_text(json.dumps({"config": config}))
        configs[name.removeprefix("Pulumi.").removesuffix(".yaml")] = config
    return configs


def _mesh_objects(result: preview.PreviewResult) -> set[str]:
    return {r.name for r in result.registrations if r.type.startswith("kubernetes:")
            and not r.type.startswith(("kubernetes:helm", "pulumi:providers"))
            and r.parent.endswith(f"fleet-mesh:mesh:Config::{HUB}-mesh")}


def test_split_stacks_preview_to_exactly_the_clusters_objects(tmp_path: Path) -> None:
    configs = _write(tmp_path, limit=100)
    assert configs[f"prod-{HUB}"]["mesh:meshConfigPart"] == {"cluster": HUB, "part": 1, "of": 2}
    part = configs[f"prod-{HUB}-part-2"]
    assert "mesh:clusters" not in part and "mesh:rootCaCertificate" not in part
    assert f"acme/fleet-mesh/prod-{HUB}" in part["mesh:peerStacks"]
    assert all(f"{HUB}-part" not in peer for c in configs.values() for peer in c.get("mesh:peerStacks", []))
    owner = preview.run(tmp_path, f"prod-{HUB}")
    second = preview.run(tmp_path, f"prod-{HUB}-part-2")
    assert owner.outputs["clusters"][HUB]["meshConfigParts"] == 2
    expected = {resource_name(HUB, o) for o in COMPILED[HUB]}
    held = _mesh_objects(owner), _mesh_objects(second)
    assert not held[0] & held[1] and held[0] | held[1] == expected
    kinds = Counter(r.type for r in second.registrations)
    assert not [t for t in kinds if t.startswith(("gcp:", "tls:", "kubernetes:helm"))]  # it manages no cluster
    assert kinds["pulumi:providers:kubernetes"] == 1
    provider = next(r for r in second.registrations if r.type == "pulumi:providers:kubernetes")
    owners = next(r for r in owner.registrations if r.type == "pulumi:providers:kubernetes" and r.name == provider.name)
    assert provider.inputs["clusterIdentifier"] == owners.inputs["clusterIdentifier"]
    assert second.outputs["meshConfigPart"] == {"cluster": HUB, "part": 2, "of": 2, "objects": len(held[1])}
    estimated = next(s for s in shards.propose(WORLD, COMPILED, "cluster", 100) if s.name == f"{HUB}-part-2")
    # A part's size is exact: its objects, the provider, the component and the stack references.
    assert len(second.registrations) == estimated.resources
    assert second.outputs["clusters"] == {} and second.outputs["rootCaCertificate"] == ROOT_CA
    typed = StackOutputs.model_validate(second.outputs)  # what consumers parse
    assert typed.mesh_config_part is not None and typed.mesh_config_part.part == 2
    assert StackOutputs.model_validate(owner.outputs).clusters[HUB].mesh_config_parts == 2


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: c.update({"mesh:meshConfigPart": {**c["mesh:meshConfigPart"], "of": 3}}),
     "splits its mesh config into 3 part(s), this stack into 2"),
    (lambda c: c.update({"mesh:istioVersion": "1.30.2", "mesh:istioRevisions": ["1.30.2"]}),
     "has no istiod of revision 1-31-1"),
    (lambda c: c.update({"mesh:clusters": ["core-use1-b"], "mesh:meshConfigPart": {"cluster": "core-use1-b",
                                                                                    "part": 1, "of": 2}}),
     f"exports {HUB}: part 2 of its mesh config is applied after the stack managing it"),
], ids=["different-split", "revision-not-installed", "cluster-not-exported"])
def test_a_part_whose_cluster_stack_disagrees_is_refused(tmp_path: Path, edit: Any, message: str) -> None:
    configs = _write(tmp_path, limit=100)
    owner = configs[f"prod-{HUB}"]
    edit(owner)
    (tmp_path / f"Pulumi.prod-{HUB}.yaml").write_text(json.dumps({"config": owner}))
    with pytest.raises(Exception, match=re.escape(message)):
        preview.run(tmp_path, f"prod-{HUB}-part-2")


def test_a_peers_derived_outputs_are_what_previewing_it_exports(tmp_path: Path) -> None:
    """What a shard reads of a peer is derived from the peer's file (previewing every peer would
    take as many previews as paths between stacks); it must match the peer's own preview."""
    configs = _write(tmp_path, limit=100)
    from mesh.peer_outputs import exports

    for stack in (f"prod-{HUB}", "prod-data-use1-a"):
        _, values, _ = preview.read_stack_config(tmp_path, stack)
        derived = exports(tmp_path, values, {})
        real = preview.run(tmp_path, stack).outputs
        assert derived["clusters"].keys() == real["clusters"].keys()
        for name, cluster in derived["clusters"].items():
            for key in ("managed", "istioRevision", "istioRevisions", "meshConfigParts", "istioVersion"):
                assert cluster[key] == real["clusters"][name][key], (stack, name, key)
            assert cluster["eastWest"] == real["clusters"][name]["eastWest"]
        assert derived["natAddressesByRegion"].keys() == real["natAddressesByRegion"].keys()
        assert derived["rootCaCertificate"] == real["rootCaCertificate"]
    assert len(configs) == 14


def test_a_new_split_lists_exactly_the_objects_that_change_stacks_by_their_urns(tmp_path: Path) -> None:
    configs = _write(tmp_path, limit=100)
    before = reshard.existing_layout(configs, "prod")
    assert before.split[HUB] == 2 and before.holder[(HUB, 2)] == f"{HUB}-part-2"
    after = shards.propose(WORLD, COMPILED, "cluster", 80, keep=before)
    new_of = next(s.split.of for s in after if s.split and s.split.cluster == HUB)
    assert new_of > 2
    assert reshard.cluster_moves(before, after, "prod") == []  # clusters keep their stacks
    moved = [m for m in reshard.moves(before, after, COMPILED, "prod") if m.cluster == HUB]
    old_part = {identity(o): p for p, objs in enumerate(parts.split(COMPILED[HUB], 2), 1) for o in objs}
    new_part = {identity(o): p for p, objs in enumerate(parts.split(COMPILED[HUB], new_of), 1) for o in objs}
    changed = {k for k in old_part if old_part[k] != new_part[k]}
    assert {name.removeprefix(HUB + "/") for m in moved for name in m.names} == changed
    assert {m.dest for m in moved} <= {f"prod-{HUB}-part-{p}" for p in range(3, new_of + 1)}  # HRW: new parts only
    # The URNs are the ones the engine gives those resources in the stack holding them now.
    source = preview.run(tmp_path, moved[0].source)
    registered = {preview.normalize_urn(r.urn) for r in source.registrations}
    assert set(moved[0].urns("fleet-mesh")) <= registered
    again = shards.propose(WORLD, COMPILED, "cluster", 100, keep=before)
    assert reshard.moves(before, again, COMPILED, "prod") == []
    # A split in use is not undone, even where fewer parts would fit: that would move objects
    # between existing parts.
    roomy = shards.propose(WORLD, COMPILED, "cluster", 10_000, keep=before)
    assert next(s.split.of for s in roomy if s.split and s.split.cluster == HUB) == 2
