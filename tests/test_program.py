"""The Pulumi program under Pulumi's mock engine: what it registers, how, and in which order.

Runs the real `__main__.py` with the config of `Pulumi.prod.yaml` (or a variant written to a temp
project), recording every registration with its options (see mesh/preview.py).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pulumi
import pytest

from mesh import preview
from mesh.compile import compile_fleet
from mesh.infra.mesh_config import resource_name
from mesh.manifest import load
from mesh.outputs import StackOutputs

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = Path(__file__).parent / "snapshots" / "prod.json"


@pytest.fixture(scope="module")
def prod() -> preview.PreviewResult:
    return preview.run(ROOT, "prod")


def of_type(result: preview.PreviewResult, kind: str) -> list[preview.Registration]:
    return [r for r in result.registrations if r.type == kind]


def test_something_was_registered(prod: preview.PreviewResult) -> None:
    # A forgotten set_mocks registers nothing and every other test would pass vacuously.
    assert len(prod.registrations) > 500


def test_every_gke_cluster_is_protected_and_hardened(prod: preview.PreviewResult) -> None:
    clusters = of_type(prod, "gcp:container/cluster:Cluster")
    assert len(clusters) == 8
    for cluster in clusters:
        inputs = cluster.inputs
        assert cluster.protect, cluster.name
        assert inputs["deletionProtection"] is True
        assert inputs["privateClusterConfig"]["enablePrivateNodes"] is True
        assert inputs["workloadIdentityConfig"]["workloadPool"] == f"{inputs['project']}.svc.id.goog"
        assert inputs["enableShieldedNodes"] is True and inputs["datapathProvider"] == "ADVANCED_DATAPATH"
        assert inputs["releaseChannel"] == {"channel": "REGULAR"}
        assert inputs["removeDefaultNodePool"] is True
        assert inputs["masterAuth"]["clientCertificateConfig"]["issueClientCertificate"] is False
        assert inputs["masterAuthorizedNetworksConfig"]["gcpPublicCidrsAccessEnabled"] is False
        assert set(cluster.ignore_changes) == {"nodePools", "initialNodeCount"}
    for pool in of_type(prod, "gcp:container/nodePool:NodePool"):
        config = pool.inputs["nodeConfig"]
        assert config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
        assert config["shieldedInstanceConfig"] == {"enableIntegrityMonitoring": True, "enableSecureBoot": True}


def test_every_kubernetes_resource_is_on_its_own_clusters_provider(prod: preview.PreviewResult) -> None:
    owners = prod.cluster_of()
    kubernetes = [r for r in prod.registrations if r.type.startswith("kubernetes:")]
    assert kubernetes
    for registration in kubernetes:
        cluster = owners[registration.urn]
        assert registration.provider.endswith(f"pulumi:providers:kubernetes::{cluster}-k8s"), registration.urn


def test_no_default_kubernetes_provider(prod: preview.PreviewResult) -> None:
    providers = of_type(prod, "pulumi:providers:kubernetes")
    assert sorted(p.name for p in providers) == sorted(f"{c}-k8s" for c in load("stacks/prod").world.clusters)
    for provider in providers:
        assert provider.inputs["clusterIdentifier"].endswith(provider.name.removesuffix("-k8s"))


def test_cacerts_before_istiod_before_gateway_before_any_istio_object(prod: preview.PreviewResult) -> None:
    by_name = {r.name: r for r in prod.registrations}
    for cluster in load("stacks/prod").world.clusters:
        istiod = by_name[f"{cluster}-istiod"]
        assert by_name[f"{cluster}-cacerts"].urn in istiod.dependencies
        assert by_name[f"{cluster}-istio-base"].urn in istiod.dependencies
        assert istiod.urn in by_name[f"{cluster}-eastwest"].dependencies
        for registration in prod.registrations:
            istio_kind = registration.type.startswith("kubernetes:") and ".istio.io/" in registration.type
            if istio_kind and registration.name.startswith(f"{cluster}/"):
                assert istiod.urn in registration.dependencies, registration.name


def test_every_compiled_object_is_registered_exactly_once(prod: preview.PreviewResult) -> None:
    compiled = compile_fleet(load("stacks/prod").world)
    expected = sorted(resource_name(c, o) for c, objects in compiled.items() for o in objects)
    mesh_types = ("kubernetes:networking.istio.io/", "kubernetes:security.istio.io/")
    registered = sorted(
        r.name for r in prod.registrations
        if r.type.startswith(mesh_types) or (r.type == "kubernetes:core/v1:Namespace" and "/" in r.name)
    )
    assert registered == expected


def test_istio_charts_are_pinned_and_from_the_current_repository(prod: preview.PreviewResult) -> None:
    releases = of_type(prod, "kubernetes:helm.sh/v3:Release")
    assert len(releases) == 24
    for release in releases:
        assert release.inputs["version"] == "1.31.1"
        assert release.inputs["repositoryOpts"] == {"repo": "https://blob.istio.io/istio-release/charts"}
    istiod = next(r for r in releases if r.name == "core-use1-a-istiod")
    values = istiod.inputs["values"]
    assert values["global"] == {"meshID": "acme-prod", "multiCluster": {"clusterName": "core-use1-a"},
                                "network": "core-use1-a", "enableReaderRBAC": False}
    assert values["meshConfig"]["trustDomain"] == "acme.example"


def test_outputs_follow_the_published_model_and_hide_secrets(prod: preview.PreviewResult) -> None:
    outputs = StackOutputs.model_validate(prod.outputs)
    assert outputs.schema_version == 1
    assert outputs.kubeconfigs == preview.SECRET
    assert outputs.clusters["core-use1-b"].east_west.internal == "10.11.0.100"
    assert outputs.clusters["edge-usw1-a"].location == "us-west1-b"
    assert outputs.services["ledger"].clusters == ["data-use1-a", "data-usw1-a"]


def test_private_keys_are_secret_inputs(prod: preview.PreviewResult) -> None:
    for secret in of_type(prod, "kubernetes:core/v1:Secret"):
        assert secret.inputs["stringData"] == preview.SECRET  # the whole map: keys and certificates
    text = preview.snapshot(prod)
    assert "PRIVATE KEY" not in text


def test_snapshot_matches_the_reviewed_one(prod: preview.PreviewResult) -> None:
    text = preview.snapshot(prod)
    if os.environ.get("REFRESH_GOLDEN") == "1":
        SNAPSHOT.write_text(text)
    assert json.loads(text) == json.loads(SNAPSHOT.read_text())
    assert text == SNAPSHOT.read_text()


def _project(tmp_path: Path, config: dict[str, object]) -> Path:
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    body = {"mesh:manifest": str(ROOT / "stacks/prod"), "mesh:istioVersion": "1.31.1", **config}
    (tmp_path / "Pulumi.test.yaml").write_text(json.dumps({"config": body}))
    return tmp_path


def test_a_shard_manages_only_its_clusters_with_the_shared_root(tmp_path: Path) -> None:
    project = _project(tmp_path, {"mesh:clusters": ["edge-use1-a", "edge-usw1-a"],
                                  "mesh:rootCaCertificate": "-----BEGIN CERTIFICATE-----\n...",
                                  "mesh:rootCaKey": {"secure": "v1:abc"}})
    result = preview.run(project, "test")
    clusters = sorted(r.name for r in of_type(result, "gcp:container/cluster:Cluster"))
    assert clusters == ["edge-use1-a", "edge-usw1-a"]
    assert of_type(result, "tls:index/selfSignedCert:SelfSignedCert") == []
    assert sorted(result.outputs["clusters"]) == clusters


def test_a_shard_without_the_shared_root_is_refused(tmp_path: Path) -> None:
    project = _project(tmp_path, {"mesh:clusters": ["edge-use1-a"]})
    with pytest.raises(pulumi.RunError, match="needs the fleet's shared root CA"):
        preview.run(project, "test")
    # A run that stopped on an error leaves nothing behind that would hang the next one.
    assert len(preview.run(ROOT, "prod").registrations) > 500


def test_bad_stack_config_is_a_clear_error(tmp_path: Path) -> None:
    project = _project(tmp_path, {"mesh:istioVersion": "latest"})
    with pytest.raises(pulumi.RunError, match="mesh:istioVersion: String should match pattern"):
        preview.run(project, "test")


def test_manifest_errors_surface_with_file_and_line(tmp_path: Path) -> None:
    manifest = tmp_path / "stack"
    shutil.copytree(ROOT / "stacks/prod", manifest)
    payments = manifest / "services/payments.yaml"
    payments.write_text(payments.read_text().replace("ledger.svc.acme.example", "ledgr.svc.acme.example"))
    (tmp_path / "project").mkdir()
    project = _project(tmp_path / "project", {"mesh:manifest": str(manifest)})
    with pytest.raises(pulumi.RunError, match=r"services/payments.yaml:\d+: calls\[3\].host: calls unknown host"):
        preview.run(project, "test")


def test_a_shard_calling_an_unpinned_cluster_of_another_shard_is_refused(tmp_path: Path) -> None:
    from mesh.program import PlanError, prepare

    manifest = tmp_path / "stack"
    shutil.copytree(ROOT / "stacks/prod", manifest)
    fleet = manifest / "fleet.yaml"
    fleet.write_text(fleet.read_text().replace("      external: 203.0.113.10\n", ""))
    values = {"manifest": str(manifest), "istioVersion": "1.31.1", "clusters": ["edge-use1-a"],
              "rootCaCertificate": "-----BEGIN CERTIFICATE-----"}
    with pytest.raises(PlanError, match="pin no east-west address: core-use1-a"):
        prepare(values, has_root_key=True)
    values["clusters"] = ["edge-use1-a", "core-use1-a"]  # managed here: its reserved address is known
    assert prepare(values, has_root_key=True).clusters == ("edge-use1-a", "core-use1-a")
