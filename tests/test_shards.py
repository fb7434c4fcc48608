"""mesh shards: stacks under a resource limit, and the stack files that run them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from mesh import preview, shards
from mesh.compile import compile_fleet
from mesh.infra.plan import STACK_RESOURCE_LIMIT
from mesh.manifest import load

import stack_fixture

ROOT = stack_fixture.project()
ROOT_CA = (Path(__file__).parent / "fixtures" / "root-ca.pem").read_text()


def test_every_proposed_stack_stays_under_the_limit_and_every_cluster_is_in_one() -> None:
    world = load(ROOT / "stacks/prod").world
    compiled = compile_fleet(world)
    size = shards.sizes(world, compiled)
    limit = max(size.values()) + 10  # room for the largest cluster, not for two large ones
    for by in shards.KEYS:
        proposal = shards.propose(world, compiled, by, limit)
        assert sorted(c for s in proposal for c in s.clusters) == sorted(world.clusters)
        assert not any(s.split for s in proposal)
        # A stack reads fewer stacks than the clusters it reads (two of them may share a stack).
        assert all(s.resources <= min(limit, sum(size[c] for c in s.clusters)) for s in proposal)
    by_region = {s.name: s.clusters for s in shards.propose(world, compiled, "region", limit)}
    assert all(world.clusters[c].region == name.rsplit("-", 1)[0] or world.clusters[c].region == name
               for name, members in by_region.items() for c in members)


def test_a_cluster_alone_over_the_limit_has_its_mesh_config_split_into_stacks_under_it() -> None:
    world = load(ROOT / "stacks/prod").world
    compiled = compile_fleet(world)
    size = shards.sizes(world, compiled)
    for by in shards.KEYS:
        proposal = shards.propose(world, compiled, by, limit=100)
        assert not [s for s in proposal if s.over(100)]
        assert sorted(c for s in proposal for c in s.clusters) == sorted(world.clusters)
        split = {c for c, n in size.items() if n > 100}
        assert split and {s.split.cluster for s in proposal if s.split} == split
        for cluster in split:
            held = [s for s in proposal if s.split and s.split.cluster == cluster]
            assert [s.split.part for s in held if s.split] == list(range(1, len(held) + 1))
            assert held[0].clusters == (cluster,) and all(s.clusters == () for s in held[1:])
            assert sum(len(shards.objects_of(s, compiled)) for s in held) == len(compiled[cluster])
            # A part reads the stack managing its cluster, and nobody reads a part.
            assert all(held[0].name in s.reads for s in held[1:])
            assert not [s for s in proposal for r in s.reads if r in {h.name for h in held[1:]}]
    report = shards.report(shards.propose(world, compiled, "cluster", limit=100), 100, "cluster")
    assert "core-use1-a-part-2" in report and "mesh config part 2 of 2" in report


def test_a_cluster_no_split_brings_under_the_limit_is_reported_not_hidden() -> None:
    world = load(ROOT / "stacks/prod").world
    proposal = shards.propose(world, compile_fleet(world), "cluster", limit=62)  # its infrastructure alone is 60
    assert [s for s in proposal if s.over(62)] and not [s for s in proposal if s.split]
    assert "no split into up to 32 parts fits" in shards.report(proposal, 62, "cluster")


def test_the_written_stacks_preview_as_shards_that_read_each_other(tmp_path: Path) -> None:
    world = load(ROOT / "stacks/prod").world
    proposal = shards.propose(world, compile_fleet(world), "region")
    base = {"mesh:manifest": str(ROOT / "stacks/prod"), "mesh:istioVersion": "1.31.1",
            "mesh:ingressSourceRanges": ["198.51.100.0/25"], "mesh:rootCaCertificate": ROOT_CA,
            "mesh:rootCaKey": {"secure": "v1:not-copied"}}
    files = shards.stack_files(proposal, base, "acme", "fleet-mesh", "prod")
    assert sorted(files) == ["Pulumi.prod-europe-west1.yaml", "Pulumi.prod-us-east1.yaml", "Pulumi.prod-us-west1.yaml"]
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name, text in files.items():
        config = yaml.safe_load(text)["config"]
        assert "mesh:rootCaKey" not in config  # per-stack secret: set with pulumi config set --secret
        config["mesh:rootCaKey"] = {"secure": "v1:set-by-hand"}
        (tmp_path / name).write_text(json.dumps({"config": config}))
    west = preview.run(tmp_path, "prod-us-west1")
    clusters = sorted(r.name for r in west.registrations if r.type == "gcp:container/cluster:Cluster")
    assert clusters == ["core-usw1-a", "data-usw1-a", "edge-usw1-a"]
    references = sorted(r.inputs["name"] for r in west.registrations if r.type == "pulumi:pulumi:StackReference")
    assert references == ["acme/fleet-mesh/prod-europe-west1", "acme/fleet-mesh/prod-us-east1"]


def test_the_commands_print_and_exit_by_what_they_found(tmp_path: Path) -> None:
    import subprocess
    import sys

    def mesh(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mesh", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)

    fits = mesh("shards", "--by", "region")
    assert fits.returncode == 0 and "3 stacks (by region)" in fits.stdout
    assert mesh("shards", "--by", "cluster", "--limit", "100").returncode == 0  # split to fit
    assert mesh("shards", "--by", "cluster", "--limit", "62").returncode == 1  # cannot fit
    written = mesh("shards", "--write", str(tmp_path))
    assert written.returncode == 0 and len(list(tmp_path.glob("Pulumi.prod-*.yaml"))) == 3
    size = mesh("size", "--format", "json")
    assert size.returncode == 0 and json.loads(size.stdout)["core-use1-b"]["workloads"]["shop"]["hosts"] > 0
    schema = mesh("schema", "outputs")
    assert json.loads(schema.stdout)["properties"]["schemaVersion"]["const"] == 2


def test_rewriting_the_stack_files_moves_mesh_objects_but_never_a_cluster(tmp_path: Path) -> None:
    import subprocess
    import sys

    from mesh import reshard
    from mesh.infra.stack_config import read_stack_file

    def mesh(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mesh", "shards", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)

    def managers(folder: Path) -> dict[str, str]:
        configs = {p.name[len("Pulumi."):-len(".yaml")]: read_stack_file(p) for p in folder.glob("Pulumi.*.yaml")}
        return {c: s for (c, part), s in reshard.existing_layout(configs, "prod").holder.items() if part == 1}

    by_region, by_cluster = tmp_path / "region", tmp_path / "cluster"
    assert mesh("--by", "region", "--write", str(by_region)).returncode == 0
    before = managers(by_region)
    # Asked for another grouping and a lower limit, every cluster keeps its stack: stacks holding
    # two large clusters stay over the limit and say why; a cluster alone in its stack is split.
    kept = mesh("--by", "cluster", "--limit", "100", "--write", str(by_region))
    assert kept.returncode == 1 and "its clusters are kept together" in kept.stdout
    assert managers(by_region) == before
    assert (by_region / "Pulumi.prod-edge-euw1-a-part-2.yaml").is_file()  # europe-west1 held edge-euw1-a alone

    assert mesh("--by", "cluster", "--write", str(by_cluster)).returncode == 0
    assert not (by_cluster / "state-moves.sh").exists()  # nothing was split, nothing moves
    split = mesh("--by", "cluster", "--limit", "100", "--write", str(by_cluster))  # the folder has no Pulumi.yaml
    assert split.returncode == 0, split.stderr
    script = (by_cluster / "state-moves.sh").read_text().splitlines()
    init = script.index("pulumi stack init prod-core-use1-a-part-2")  # a move needs its destination to exist
    assert script[init + 1].startswith("pulumi state move --yes --source prod-core-use1-a "
                                       "--dest prod-core-use1-a-part-2")
    assert "objects move from prod-core-use1-a to prod-core-use1-a-part-2" in split.stderr


def test_a_folder_whose_files_give_a_cluster_another_stack_is_refused_before_anything_is_written() -> None:
    from mesh import reshard

    world = load(ROOT / "stacks/prod").world
    proposal = shards.propose(world, compile_fleet(world), "cluster")
    edited = shards.Layout({("core-use1-a", 1): "us-east1"}, {})  # a hand-made file set
    assert reshard.cluster_moves(edited, proposal, "prod") == [("core-use1-a", "prod-us-east1", "prod-core-use1-a")]
    assert reshard.cluster_moves(shards.Layout({("core-use1-a", 1): "core-use1-a"}, {}), proposal, "prod") == []


def test_new_clusters_join_the_kept_stacks_and_move_nobody() -> None:
    world = load(ROOT / "stacks/prod").world
    compiled = compile_fleet(world)
    first = shards.propose(world, compiled, "region")
    layout = shards.Layout({(c, 1): s.name for s in first for c in s.clusters if c != "data-use1-a"}, {})
    again = shards.propose(world, compiled, "region", keep=layout)  # data-use1-a is new to the files
    assert all(next(s.name for s in again if c in s.clusters) == stack for (c, _), stack in layout.holder.items())
    assert any("data-use1-a" in s.clusters for s in again)
    assert not [s for s in again if s.over(STACK_RESOURCE_LIMIT)]


def test_a_kept_split_that_no_longer_fits_stays_split_and_says_so() -> None:
    from mesh import reshard

    world = load(ROOT / "stacks/prod").world
    compiled = compile_fleet(world)
    layout = shards.Layout({("core-use1-a", 1): "core-use1-a", ("core-use1-a", 2): "core-use1-a-part-2"},
                           {"core-use1-a": 2})
    proposal = shards.propose(world, compiled, "cluster", limit=67, keep=layout)  # its shared objects alone: more
    held = [s for s in proposal if s.split and s.split.cluster == "core-use1-a"]
    assert [s.name for s in held] == ["core-use1-a", "core-use1-a-part-2"] and any(s.over(67) for s in held)
    assert reshard.moves(layout, proposal, compiled, "prod") == []  # nothing moves back into part 1


def test_a_new_part_never_takes_the_name_of_another_stack() -> None:
    world = load(ROOT / "stacks/prod").world
    compiled = compile_fleet(world)
    # A kept stack (hand-named) managing data-use1-a is called what core-use1-a's new part would be.
    layout = shards.Layout({("data-use1-a", 1): "core-use1-a-part-2", ("core-use1-a", 1): "us-east1"}, {})
    proposal = shards.propose(world, compiled, "cluster", limit=150, keep=layout)
    names = [s.name for s in proposal]
    assert len(names) == len(set(names))
    part = next(s for s in proposal if s.split and s.split.cluster == "core-use1-a" and s.split.part == 2)
    assert part.name == "core-use1-a-part-2-2"
    assert next(s for s in proposal if "data-use1-a" in s.clusters).name == "core-use1-a-part-2"
