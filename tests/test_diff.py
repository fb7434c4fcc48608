"""`mesh diff`: a change shows only what it causes (churn), in words and per object."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh import diff_format, diff_infra, preview
from mesh.compile import meta
from mesh.diagnostics import ManifestError
from mesh.diff import diff_sides, diff_worlds, field_changes
from mesh.manifest import load, schema

import stack_fixture
from strategies import Manifest, manifests

ROOT = stack_fixture.project()  # program, stack file and manifest


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
    # payments runs in core-use1-a, where reviews was not yet called: its config arrives there, in the
    # imports namespace the cluster already has (reviews does not run there: no namespace of its own).
    assert changed_keys(result) == {
        ("core-use1-a", "Sidecar", "payments", "default"),
        ("core-use1-a", "ServiceEntry", "mesh-imports", "reviews"),
        ("core-use1-a", "DestinationRule", "mesh-imports", "reviews"),
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
    namespaces = {before.services[s].namespace for s in {"fraud"} | callers | callees} | {meta.IMPORTS_NAMESPACE}
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
        elif change.kind == "Namespace":  # the first import into one of the caller's clusters
            assert change.name == meta.IMPORTS_NAMESPACE and change.action == "added"
            assert change.cluster not in callee_clusters
        else:  # the callee's own config, where needed: beside its pods, else with the cluster's imports
            assert change.namespace == (callee.namespace if change.cluster in callee_clusters
                                        else meta.IMPORTS_NAMESPACE), change
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
    assert "search: core-use1-a 90 → 50, core-use1-b 10 → 50" in changed.stdout
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
    fleet["networks"]["edge-euw2"] = {"project": "acme-net-edge"}  # acme-edge-prod's one Shared VPC host
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


def test_a_namespace_leaving_a_cluster_is_destructive_and_listed_first(tmp_path: Path) -> None:
    head = stack_copy(tmp_path)
    edit(head / "locations.yaml", "users: [core-use1-a, core-usw1-a]", "users: [core-use1-a]")
    result = diff_sides(str(ROOT / "stacks/prod"), str(head), ROOT)
    gone = sorted((c.cluster, c.name) for c in result.objects if c.kind == "Namespace" and c.action == "removed")
    assert gone, "the edit should take some namespace out of core-usw1-a"
    expected = [f"Namespace {name} leaves {cluster}: no longer managed; Pulumi keeps it (retainOnDelete) — "
                "delete it by hand once empty" for cluster, name in gone]
    assert result.destructive == expected
    assert result.intent[:len(expected)] == expected
    assert "users no longer runs in core-usw1-a" in result.intent[len(expected):]
    assert f":warning: **{expected[0]}**" in diff_format.markdown(result)
    assert json.loads(diff_format.as_json(result))["destructive"] == expected
    assert f"! {expected[0]}" in diff_format.text(result)


def fields(before: object, after: object) -> list[tuple[str, object, object, bool]]:
    return [(f.path, f.before, f.after, f.members) for f in field_changes(before, after, "spec")]


def test_list_changes_are_elements_keyed_by_identity_not_shifted_indexes() -> None:
    a = {"address": "10.0.0.1", "network": "n1", "ports": {"http": 15443}}
    b = {"address": "10.0.0.2", "network": "n2", "ports": {"http": 15443}}
    c = {"address": "10.0.0.1", "network": "n3", "ports": {"http": 15443}}  # same address, other network
    # An endpoint added in front: one addition, nothing else (by index, every element would change).
    assert fields({"endpoints": [a]}, {"endpoints": [b, a]}) == [("spec.endpoints", [], [b], True)]
    assert fields({"endpoints": [a, b]}, {"endpoints": [c, b]}) == [("spec.endpoints", [a], [c], True)]
    moved = {**b, "ports": {"http": 15444}}
    assert fields({"endpoints": [a, b]}, {"endpoints": [moved, a]}) == [
        ("spec.endpoints[10.0.0.2/n2].ports.http", 15443, 15444, False)]
    v1, v2 = {"name": "v1", "labels": {"v": "1"}}, {"name": "v2", "labels": {"v": "2"}}
    assert fields({"subsets": [v1]}, {"subsets": [v2, {**v1, "labels": {"v": "one"}}]}) == [
        ("spec.subsets", [], [v2], True), ("spec.subsets[v1].labels.v", "1", "one", False)]
    http, grpc = {"number": 80, "protocol": "HTTP"}, {"number": 9090, "protocol": "GRPC"}
    assert fields({"ports": [http]}, {"ports": [grpc, http]}) == [("spec.ports", [], [grpc], True)]
    canary = {"match": [{"headers": {"canary": {"exact": "1"}}}], "route": [{"destination": {"host": "x"}}]}
    default = {"match": [{"uri": {"prefix": "/"}}], "route": [{"destination": {"host": "y"}}]}
    assert fields({"http": [default]}, {"http": [canary, default]}) == [("spec.http", [], [canary], True)]
    # Names stay set members; same members in another order is still a change, shown whole.
    assert fields({"hosts": ["a", "b"]}, {"hosts": ["c", "a"]}) == [("spec.hosts", ["b"], ["c"], True)]
    assert fields({"hosts": ["a", "b"]}, {"hosts": ["b", "a"]}) == [("spec.hosts", ["a", "b"], ["b", "a"], False)]
    # Nothing to key by and the same length: position is the identity.
    rules = [{"from": [{"source": {"principals": ["p"]}}]}]
    grown = [{"from": [{"source": {"principals": ["p", "q"]}}]}]
    assert fields({"rules": rules}, {"rules": grown}) == [("spec.rules[0].from[0].source.principals", [], ["q"], True)]


def test_an_added_endpoint_reads_as_one_addition_in_every_format(tmp_path: Path) -> None:
    head = stack_copy(tmp_path)
    edit(head / "locations.yaml", "users: [core-use1-a, core-usw1-a]", "users: [core-use1-a, core-use1-b, core-usw1-a]")
    result = diff_sides(str(ROOT / "stacks/prod"), str(head), ROOT)
    entries = [c for c in result.objects if c.kind == "ServiceEntry" and c.name == "users" and c.action == "changed"
               and c.cluster.startswith("edge-")]
    assert entries
    for entry in entries:
        (change,) = entry.fields
        assert change.path == "spec.endpoints" and change.members and change.before == []
        assert [e["network"] for e in change.after] == ["core-use1-b"]
    text = diff_format.text(result)
    assert 'spec.endpoints: + {"address": ' in text
    assert "spec.endpoints[" not in text.split("\n\nedge-", 1)[1]  # no shifted indexes in the edge sections
    objects = json.loads(diff_format.as_json(result))["objects"]
    edge = next(o for o in objects if o["cluster"] == entries[0].cluster and o["kind"] == "ServiceEntry")
    assert edge["fields"][0]["after"][0]["network"] == "core-use1-b" and edge["fields"][0]["members"]


def test_weights_change_in_one_line_and_ending_a_split_names_where_it_runs(tmp_path: Path) -> None:
    head = stack_copy(tmp_path)
    locations = head / "locations.yaml"
    edit(locations, "{cluster: core-use1-a, weight: 90}", "{cluster: core-use1-a, weight: 50}")
    edit(locations, "{cluster: core-use1-b, weight: 10}", "{cluster: core-use1-b, weight: 50}")
    shifted = diff_sides(str(ROOT / "stacks/prod"), str(head), ROOT)
    assert shifted.intent == ["search: core-use1-a 90 → 50, core-use1-b 10 → 50"]
    edit(locations, "{cluster: core-use1-a, weight: 50}", "core-use1-a")
    edit(locations, "{cluster: core-use1-b, weight: 50}", "core-use1-b")
    ended = diff_sides(str(ROOT / "stacks/prod"), str(head), ROOT)
    assert ended.intent == ["search: weights removed, now active in core-use1-a, core-use1-b"]
    assert not any("None" in line for line in ended.intent)


PKI = "urn:pulumi:prod::fleet-mesh::fleet-mesh:pki:MeshPki"


def registration(type_: str, name: str, inputs: dict[str, object]) -> preview.Registration:
    return preview.Registration(urn=f"{PKI}${type_}::{name}", type=type_, name=name, parent=f"{PKI}::mesh-pki",
                                provider="", protect=False, dependencies=(), ignore_changes=(), custom=True,
                                inputs=inputs)


def pki(root: str | None, subject: str = "acme.example", key: str = "P384", renewal: int = 0) -> preview.PreviewResult:
    """The MeshPki's registrations as the mock engine records them: a generated root (`root` None)
    or an intermediate signed under a provided one."""
    registrations = []
    if root is None:
        registrations += [
            registration(diff_infra.ROOT_KEY, "mesh-pki-root-key", {"algorithm": "ECDSA", "ecdsaCurve": key}),
            registration(diff_infra.ROOT_CERT, "mesh-pki-root", {
                "isCaCertificate": True, "privateKeyPem": "[secret]", "subject": {"organization": subject},
                "validityPeriodHours": 87600, "earlyRenewalHours": renewal})]
    registrations.append(registration(diff_infra.INTERMEDIATE, "mesh-pki-core-use1-a", {
        "caCertPem": root or "<computed>", "caPrivateKeyPem": "[secret]", "earlyRenewalHours": 720}))
    return preview.PreviewResult("prod", "fleet-mesh", registrations)


def root_lines(before: preview.PreviewResult, after: preview.PreviewResult) -> list[str]:
    result = diff_worlds(load(ROOT / "stacks/prod").world, load(ROOT / "stacks/prod").world)
    result.add_resources(diff_infra.compare(before, after))
    assert result.intent[:len(result.destructive)] == result.destructive
    return result.destructive


@pytest.mark.parametrize(("before", "after", "starts"), [
    (pki(None), pki(None, subject="acme2.example"),
     "root CA mesh-pki-root would be replaced (changes mesh-pki-root.subject)"),
    (pki(None), pki(None, key="P521"),
     "root CA mesh-pki-root would be replaced (changes mesh-pki-root-key.ecdsaCurve)"),
    (pki(None), pki("-----BEGIN CERTIFICATE-----A"), "root CA switches from the generated mesh-pki-root to "
                                                     "mesh:rootCaCertificate"),
    (pki("-----BEGIN CERTIFICATE-----A"), pki(None), "root CA switches from mesh:rootCaCertificate to a generated"),
    (pki("-----BEGIN CERTIFICATE-----A"), pki("-----BEGIN CERTIFICATE-----B"),
     "root CA changes (mesh:rootCaCertificate is another certificate)"),
])
def test_replacing_the_root_ca_is_destructive_and_says_how_to_rotate(
        before: preview.PreviewResult, after: preview.PreviewResult, starts: str) -> None:
    (line,) = root_lines(before, after)  # once, though it shows on the root, its key and intermediates
    assert line.startswith(starts), line
    assert "cross-cluster mTLS breaks until all clusters trust the new one" in line
    assert "meshConfig.caCertificates" in line


def test_root_ca_inputs_the_provider_updates_in_place_are_not_destructive() -> None:
    assert root_lines(pki(None), pki(None, renewal=24)) == []
    assert root_lines(pki("-----BEGIN CERTIFICATE-----A"), pki("-----BEGIN CERTIFICATE-----A")) == []


def project_repo(tmp_path: Path) -> Path:
    """The Pulumi project (program, stack file, manifest) committed on `main` in a scratch repository."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "stacks/prod", repo / "stacks/prod")
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "__main__.py"):
        shutil.copy(ROOT / name, repo / name)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    return repo


def test_an_istio_version_bump_shows_the_versions_compactly(tmp_path: Path) -> None:
    repo = project_repo(tmp_path)
    stack_file = repo / "Pulumi.prod.yaml"
    config = yaml.safe_load(stack_file.read_text())
    old = config["config"]["mesh:istioVersion"]
    new = f"{old.rsplit('.', 1)[0]}.{int(old.rsplit('.', 1)[1]) + 1}"
    config["config"]["mesh:istioVersion"] = new
    stack_file.write_text(yaml.safe_dump(config))
    result = diff_sides("main", str(repo / "stacks/prod"), repo, stack="prod")
    # In place, the old revision's istiod goes in the same `up`: flagged, with the canary way out.
    assert result.destructive and all(line.startswith(f"istiod release istiod-{old.replace('.', '-')} would be "
                                                      "removed") and "mesh:istioRevisions" in line
                                      for line in result.destructive)
    assert not result.objects or all(c.kind == "Namespace" for c in result.objects)
    releases = [c for c in result.resources if c.type == "kubernetes:helm.sh/v3:Release"]
    bumped = [c for c in releases if c.action in ("changed", "replaced")]  # istiod is named by revision
    assert bumped and all(any((f.path, f.before, f.after) == ("version", old, new) for f in c.changes)
                          for c in bumped)
    text = diff_format.text(result)
    assert f"version: {old} → {new}" in text
    # Grouped: the same edit to many releases is said once per group, not once per release.
    assert text.count(f"version: {old} → {new}") < len(bumped)
    assert sum("version" in line for line in text.splitlines()) < len(bumped)
    assert any(line.startswith("Pulumi resources outside the mesh change: ") and f"version {old} → {new}" in line
               for line in result.intent)
    assert f"version: {old} → {new}" in diff_format.markdown(result)
    as_json = json.loads(diff_format.as_json(result))
    version = next(f for r in as_json["resources"] for f in r["changes"] if f["path"] == "version")
    assert (version["before"], version["after"]) == (old, new)
    # The canary way: installing the new revision beside the old one removes nothing.
    config["config"]["mesh:istioVersion"] = old
    config["config"]["mesh:istioRevisions"] = [old, new]
    stack_file.write_text(yaml.safe_dump(config))
    canary = diff_sides("main", str(repo / "stacks/prod"), repo, stack="prod")
    assert not canary.destructive
    assert any(c.action == "added" and c.name.endswith(f"istiod-{new.replace('.', '-')}") for c in canary.resources)


def test_a_trust_domain_change_also_replaces_the_generated_root(tmp_path: Path) -> None:
    head = stack_copy(tmp_path)
    edit(head / "fleet.yaml", "trustDomain: acme.example", "trustDomain: acme2.example")
    result = diff_sides(str(ROOT / "stacks/prod"), str(head), ROOT, stack="prod")
    assert any(line.startswith("trust domain changes acme.example → acme2.example") and "trustDomainAliases" in line
               for line in result.destructive)
    roots = [line for line in result.destructive if line.startswith("root CA mesh-pki-root would be replaced")]
    assert len(roots) == 1 and "meshConfig.caCertificates" in roots[0]


def test_a_renamed_resource_shows_what_differs_from_the_one_it_replaces() -> None:
    parent = "urn:pulumi:prod::fleet-mesh::fleet-mesh:istio:ControlPlane::core-use1-a"
    release = "kubernetes:helm.sh/v3:Release"

    # (A removed istiod is destructive and never paired: test_an_istio_version_bump_… covers that.)
    def gateway(version: str) -> preview.PreviewResult:
        name = f"core-use1-a-gateway-{version.replace('.', '-')}"
        return preview.PreviewResult("prod", "fleet-mesh", [preview.Registration(
            urn=f"{parent}${release}::{name}", type=release, name=name, parent=parent, provider="", protect=False,
            dependencies=(), ignore_changes=(), custom=True, inputs={"chart": "gateway", "version": version})])

    changes = diff_infra.compare(gateway("1.31.1"), gateway("1.31.2"))
    (replaced,) = changes  # one replacement, not a removal and an unrelated addition
    assert (replaced.action, replaced.name, replaced.replaces) == (
        "replaced", "core-use1-a-gateway-1-31-2", "core-use1-a-gateway-1-31-1")
    assert [(f.path, f.before, f.after) for f in replaced.changes] == [("version", "1.31.1", "1.31.2")]
    result = diff_worlds(load(ROOT / "stacks/prod").world, load(ROOT / "stacks/prod").world)
    result.add_resources(changes)
    text = diff_format.text(result)
    assert "± kubernetes:helm.sh/v3:Release core-use1-a-gateway-1-31-1 → core-use1-a-gateway-1-31-2" in text
    assert "      version: 1.31.1 → 1.31.2" in text


def test_a_broken_git_side_is_named_as_its_ref(tmp_path: Path) -> None:
    repo = project_repo(tmp_path)
    payments = repo / "stacks/prod/services/payments.yaml"
    payments.write_text(payments.read_text().replace("name: payments", "name: Payments!"))
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    "commit", "-qam", "break payments"], check=True)
    with pytest.raises(ManifestError) as caught:
        diff_sides("HEAD", "main", repo)
    rendered = [d.render() for d in caught.value.diagnostics]
    assert any(line.startswith("HEAD:stacks/prod/services/payments.yaml:") for line in rendered), rendered
    assert all(line.startswith("HEAD:stacks/prod/") for line in rendered), rendered


def test_a_new_call_shows_how_it_moves_the_callers_proxy_and_istiod(tmp_path: Path) -> None:
    head = stack_copy(tmp_path)
    edit(head / "services/payments.yaml", "  - fraud.svc.acme.example\n",
         "  - fraud.svc.acme.example\n  - reviews.svc.acme.example\n")
    result = diff_sides(str(ROOT / "stacks/prod"), str(head), ROOT)
    [line] = [s for s in result.sizes if s.startswith("core-use1-a:")]
    assert "imported hosts: payments 8 → 9" in line and "istiod ≈" in line
    assert not any(s.startswith("data-use1-a:") for s in result.sizes)  # untouched clusters say nothing
    assert "Size (estimates, mesh size)" in diff_format.text(result)
    assert json.loads(diff_format.as_json(result))["sizes"] == result.sizes


def test_long_work_reports_its_stages_and_stays_quiet_off_a_terminal(tmp_path: Path) -> None:
    stages: list[str] = []
    diff_sides(str(ROOT / "stacks/prod"), str(ROOT / "stacks/prod"), ROOT, progress=stages.append)
    side = ROOT / "stacks/prod"
    assert stages == [f"reading {side} and {side}", "compiling and comparing both sides"]
    # Through the CLI with stderr not a terminal (CI, pipes): no progress lines at all.
    result = subprocess.run([sys.executable, "-m", "mesh", "diff", "stacks/prod", "stacks/prod", "--no-pulumi"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stderr == ""
