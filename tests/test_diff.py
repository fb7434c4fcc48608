"""`mesh diff`: a change shows only what it causes (churn), in words and per object."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh import diff_format
from mesh.diff import diff_sides, diff_worlds
from mesh.manifest import load, schema

from strategies import Manifest, manifests

ROOT = Path(__file__).resolve().parent.parent


def stack_copy(tmp_path: Path) -> Path:
    target = tmp_path / "stack"
    shutil.copytree(ROOT / "stacks/prod", target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def changed_keys(result: object) -> set[tuple[str, str, str, str]]:
    return {(c.cluster, c.kind, c.namespace, c.name) for c in result.objects}  # type: ignore[attr-defined]


def test_an_unrelated_edit_changes_nothing(tmp_path: Path) -> None:
    head = stack_copy(tmp_path)
    edit(head / "services/payments.yaml", "owner: payments", "owner: payments-platform  # new team name")
    result = diff_sides(str(ROOT / "stacks/prod"), str(head), ROOT)
    assert not result.changed
    assert diff_format.text(result) == "No changes.\n"


def test_adding_a_call_changes_only_the_caller_sidecar_callee_authorization_and_new_config(tmp_path: Path) -> None:
    head = stack_copy(tmp_path)
    edit(head / "services/payments.yaml", "  - currency.svc.acme.example\n",
         "  - currency.svc.acme.example\n  - reviews.svc.acme.example\n")
    result = diff_sides(str(ROOT / "stacks/prod"), str(head), ROOT)
    assert result.intent == ["payments may now call reviews (from core-use1-a)"]
    # payments runs in core-use1-a, where reviews was not yet called: its config arrives there.
    assert changed_keys(result) == {
        ("core-use1-a", "Sidecar", "payments", "default"),
        ("core-use1-a", "Namespace", "", "reviews"),
        ("core-use1-a", "ServiceEntry", "reviews", "reviews"),
        ("core-use1-a", "DestinationRule", "reviews", "reviews"),
        ("core-usw1-a", "AuthorizationPolicy", "reviews", "reviews-callers"),
    }


def test_moving_a_service_touches_only_its_own_its_callers_and_its_callees_objects(tmp_path: Path) -> None:
    head = stack_copy(tmp_path)
    edit(head / "locations.yaml", "fraud: [core-use1-a]", "fraud: [core-usw1-a]")
    before, after = load(ROOT / "stacks/prod").world, load(head).world
    result = diff_worlds(before, after)
    assert "fraud moves from core-use1-a to core-usw1-a" in result.intent
    callers = {c.caller for c in before.callers("fraud")}
    callees = {c.callee for c in before.callees("fraud")}  # fraud's way out moves with it
    involved = {"core-use1-a", "core-usw1-a"} | {c for s in callers for c in before.clusters_of(s)}
    namespaces = {before.services[s].namespace for s in {"fraud"} | callers | callees}
    for change in result.objects:
        assert change.cluster in involved, change
        assert (change.namespace or change.name) in namespaces | {"istio-system"}, change


def test_removing_a_cluster_is_flagged_first(tmp_path: Path) -> None:
    head = stack_copy(tmp_path)
    fleet = yaml.safe_load((head / "fleet.yaml").read_text())
    fleet["clusters"] = [c for c in fleet["clusters"] if c["name"] != "edge-usw1-a"]
    (head / "fleet.yaml").write_text(yaml.safe_dump(fleet))
    locations = (head / "locations.yaml").read_text().replace(", edge-usw1-a", "")
    (head / "locations.yaml").write_text(locations)
    result = diff_sides(str(ROOT / "stacks/prod"), str(head), ROOT)
    assert result.intent[0].startswith("cluster edge-usw1-a is removed")
    assert result.destructive == result.intent[:1]
    markdown = diff_format.markdown(result)
    assert ":warning: **cluster edge-usw1-a is removed" in markdown


def test_markdown_stays_under_the_comment_limit_and_says_so(tmp_path: Path) -> None:
    head = stack_copy(tmp_path)
    edit(head / "fleet.yaml", "trustDomain: acme.example", "trustDomain: acme2.example")
    result = diff_sides(str(ROOT / "stacks/prod"), str(head), ROOT)
    text = diff_format.markdown(result, limit=4_000)
    assert len(text) <= 4_000
    assert "left out to stay under GitHub's comment size" in text
    assert "trust domain changes" in result.destructive[0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests(), st.data())
def test_a_new_call_in_a_generated_fleet_changes_only_what_it_needs(manifest: Manifest, data: st.DataObject) -> None:
    services = list(manifest.services)
    caller = data.draw(st.sampled_from(services))
    tiers = {"front": {"front", "back"}, "back": {"back"}}
    called = {c.host for c in caller.calls}
    options = [s for s in services if s.name != caller.name and s.tier in tiers[caller.tier] and s.host not in called]
    if not options:
        return
    callee = data.draw(st.sampled_from(options))
    grown = caller.model_copy(update={"calls": [*caller.calls, schema.Call(host=callee.host)]})
    after = Manifest(manifest.fleet, tuple(grown if s is caller else s for s in services), manifest.locations)
    before_world, after_world = manifest.world(), after.world()
    result = diff_worlds(before_world, after_world)
    callee_clusters = set(before_world.clusters_of(callee.name))
    for change in result.objects:
        if change.kind == "Sidecar":
            assert change.namespace == caller.namespace and change.cluster in before_world.clusters_of(caller.name)
        elif change.kind == "AuthorizationPolicy":
            assert change.name == f"{callee.name}-callers" and change.cluster in callee_clusters
        elif change.kind == "Gateway":
            assert change.cluster in callee_clusters  # newly exposed to the caller's other cluster
        elif change.kind == "Namespace":
            assert change.name == callee.namespace and change.action == "added"
        else:
            assert change.namespace == callee.namespace, change  # the callee's own config, where needed
    assert any(c.kind == "AuthorizationPolicy" for c in result.objects)


def test_cli_exit_code_formats_and_git_refs(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "stacks/prod", repo / "stacks/prod")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    locations = repo / "stacks/prod/locations.yaml"
    edit(locations, "{cluster: core-use1-a, weight: 90}", "{cluster: core-use1-a, weight: 50}")
    edit(locations, "{cluster: core-use1-b, weight: 10}", "{cluster: core-use1-b, weight: 50}")
    without_project = subprocess.run([sys.executable, "-m", "mesh", "diff", "main"], cwd=repo, capture_output=True,
                                     text=True)
    assert without_project.returncode == 1 and "use --no-pulumi" in without_project.stderr
    assert "Traceback" not in without_project.stderr
    run = [sys.executable, "-m", "mesh", "diff", "--no-pulumi"]
    same = subprocess.run([*run, "main", "main", "--exit-code"], cwd=repo, capture_output=True, text=True)
    assert same.returncode == 0 and same.stdout == "No changes.\n", same.stderr
    changed = subprocess.run([*run, "--exit-code"], cwd=repo, capture_output=True, text=True)
    assert changed.returncode == 1, changed.stderr
    assert "search in core-use1-a: weight 90 → 50" in changed.stdout
    as_json = subprocess.run([*run, "main", "stacks/prod", "--format", "json"], cwd=repo, capture_output=True,
                             text=True)
    assert '"changed": true' in as_json.stdout
    missing = subprocess.run([*run, "nosuchref", "stacks/prod"], cwd=repo, capture_output=True, text=True)
    assert missing.returncode == 1 and "cannot read stacks/prod at git ref 'nosuchref'" in missing.stderr


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_no_change_in_every_format(fmt: str) -> None:
    result = diff_sides(str(ROOT / "stacks/prod"), str(ROOT / "stacks/prod"), ROOT)
    rendered = {"text": diff_format.text, "markdown": diff_format.markdown, "json": diff_format.as_json}[fmt](result)
    assert "no changes" in rendered.lower() or '"changed": false' in rendered


def test_pulumi_side_flags_cluster_deletion_and_replacement_and_lists_other_resources(tmp_path: Path) -> None:
    head = stack_copy(tmp_path)
    fleet = yaml.safe_load((head / "fleet.yaml").read_text())
    fleet["clusters"] = [c for c in fleet["clusters"] if c["name"] != "edge-usw1-a"]
    edge = next(c for c in fleet["clusters"] if c["name"] == "edge-euw1-a")
    edge["ipRanges"]["controlPlane"] = "172.16.1.112/28"  # forces a new GKE cluster
    edge["size"] = "large"
    (head / "fleet.yaml").write_text(yaml.safe_dump(fleet))
    (head / "locations.yaml").write_text((head / "locations.yaml").read_text().replace(", edge-usw1-a", ""))
    result = diff_sides(str(ROOT / "stacks/prod"), str(head), ROOT, stack="prod")
    assert set(result.destructive[:2]) == {
        "GKE cluster edge-usw1-a would be deleted",
        "GKE cluster edge-euw1-a would be replaced (changes privateClusterConfig.masterIpv4CidrBlock)",
    }
    assert result.intent[0] == result.destructive[0]
    changed = {(c.type.rsplit(":", 1)[-1], c.name, c.action) for c in result.resources}
    assert ("NodePool", "edge-euw1-a-default", "changed") in changed
    assert ("Cluster", "edge-usw1-a", "removed") in changed
    assert not any("fleet-mesh:mesh:Config" in c.urn for c in result.resources)
    assert "Pulumi resources outside the mesh objects" in diff_format.text(result)


def test_adding_a_cluster_and_placing_a_service_reads_as_such(tmp_path: Path) -> None:
    head = stack_copy(tmp_path)
    fleet = yaml.safe_load((head / "fleet.yaml").read_text())
    fleet["clusters"].append({
        "name": "edge-euw2-a", "project": "acme-edge-prod", "region": "europe-west2", "network": "edge-euw2",
        "tier": "edge", "eastWest": {"external": "192.0.2.40"},
        "ipRanges": {"nodes": "10.160.0.0/20", "pods": "10.96.0.0/14", "services": "10.200.128.0/20",
                     "controlPlane": "172.16.0.128/28"}})
    fleet["networks"]["edge-euw2"] = {"project": "acme-net-edge-euw2"}
    (head / "fleet.yaml").write_text(yaml.safe_dump(fleet))
    edit(head / "locations.yaml", "media: [edge-use1-a, edge-euw1-a]", "media: [edge-use1-a, edge-euw1-a, edge-euw2-a]")
    result = diff_sides(str(ROOT / "stacks/prod"), str(head), ROOT)
    assert result.intent == [
        "cluster edge-euw2-a is added (europe-west2, network edge-euw2, tier edge)",
        "media now also runs in edge-euw2-a",
        "edge-euw2-a's east-west gateway now exposes media.svc.acme.example",
    ]
    # The new cluster gets its base objects and media's; every cluster running web-frontend (media's
    # caller) learns the new location: a WorkloadEntry beside local media pods, else a new endpoint.
    by_cluster = {(c.cluster, c.kind, c.action) for c in result.objects if c.cluster != "edge-euw2-a"}
    assert by_cluster == {("edge-euw1-a", "WorkloadEntry", "added"), ("edge-use1-a", "WorkloadEntry", "added"),
                          ("edge-usw1-a", "ServiceEntry", "changed")}
