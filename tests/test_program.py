"""The Pulumi program under Pulumi's mock engine: what it registers, how, and in which order.

Runs the real `__main__.py` with the config of `Pulumi.prod.yaml` (or a variant written to a temp
project), recording every registration with its options (see mesh/preview.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest

from mesh import preview
from mesh.compile import compile_fleet
from mesh.diagnostics import ManifestError
from mesh.infra.mesh_config import resource_name
from mesh.manifest import load
from mesh.outputs import StackOutputs

import stack_fixture

ROOT = stack_fixture.project()  # the real program on the suite's own stack
SNAPSHOT = Path(__file__).parent / "snapshots" / "prod.json"
# A real certificate (public part only): the stack config parses a provided root.
ROOT_CA = (Path(__file__).parent / "fixtures" / "root-ca.pem").read_text()


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
        assert set(cluster.ignore_changes) == {"nodePools", "initialNodeCount", "nodeConfig"}
        # Basic vulnerability scanning was withdrawn in 2025; GKE rejects clusters that ask for it.
        assert inputs["securityPostureConfig"] == {"mode": "BASIC", "vulnerabilityMode": "VULNERABILITY_DISABLED"}
        assert inputs["privateClusterConfig"]["masterIpv4CidrBlock"].endswith("/28")
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
    assert sorted(p.name for p in providers) == sorted(f"{c}-k8s" for c in load(ROOT / "stacks/prod").world.clusters)
    for provider in providers:
        assert provider.inputs["clusterIdentifier"].endswith(provider.name.removesuffix("-k8s"))


def test_cacerts_before_istiod_before_gateway_before_any_istio_object(prod: preview.PreviewResult) -> None:
    by_name = {r.name: r for r in prod.registrations}
    releases = of_type(prod, "kubernetes:helm.sh/v3:Release")
    for cluster in load(ROOT / "stacks/prod").world.clusters:
        istiods = [r for r in releases if r.name.startswith(f"{cluster}-istiod")]
        gateways = [r for r in releases if r.name.startswith(f"{cluster}-") and r.inputs["chart"].endswith("gateway")]
        assert istiods and gateways
        for istiod in istiods:
            assert by_name[f"{cluster}-cacerts"].urn in istiod.dependencies
            assert by_name[f"{cluster}-istio-base"].urn in istiod.dependencies
            assert all(istiod.urn in gateway.dependencies for gateway in gateways)
        for registration in prod.registrations:
            istio_kind = registration.type.startswith("kubernetes:") and ".istio.io/" in registration.type
            if istio_kind and registration.name.startswith(f"{cluster}/"):
                assert {i.urn for i in istiods} <= waits_for(prod, registration), registration.name


def waits_for(result: preview.PreviewResult, registration: preview.Registration) -> set[str]:
    """Everything a resource waits for, through its dependencies' dependencies."""
    by_urn = {r.urn: r for r in result.registrations}
    seen: set[str] = set()
    todo = list(registration.dependencies)
    while todo:
        urn = todo.pop()
        if urn not in seen:
            seen.add(urn)
            todo += by_urn[urn].dependencies if urn in by_urn else []
    return seen


def test_every_compiled_object_is_registered_exactly_once(prod: preview.PreviewResult) -> None:
    compiled = compile_fleet(load(ROOT / "stacks/prod").world)
    expected = sorted(resource_name(c, o) for c, objects in compiled.items() for o in objects)
    mesh_types = ("kubernetes:networking.istio.io/", "kubernetes:security.istio.io/")
    registered = sorted(
        r.name for r in prod.registrations
        if r.type.startswith(mesh_types) or (r.type == "kubernetes:core/v1:Namespace" and "/" in r.name)
    )
    assert registered == expected


def test_istio_charts_are_pinned_and_from_the_current_repository(prod: preview.PreviewResult) -> None:
    releases = of_type(prod, "kubernetes:helm.sh/v3:Release")
    charts = sorted(r.inputs["chart"] for r in releases)
    # base, istiod and the east-west gateway everywhere; an ingress gateway where ingress services run.
    assert charts.count("base") == charts.count("istiod") == 8
    assert charts.count("gateway") == 8 + 3 + 1  # and an egress gateway where payments calls Stripe
    for release in releases:
        assert release.inputs["version"] == "1.31.1"
        assert release.inputs["repositoryOpts"] == {"repo": "https://blob.istio.io/istio-release/charts"}
    istiod = next(r for r in releases if r.name.startswith("core-use1-a-istiod"))
    values = istiod.inputs["values"]
    assert {k: values["global"][k] for k in ("meshID", "multiCluster", "network", "enableReaderRBAC")} == {
        "meshID": "acme-prod", "multiCluster": {"clusterName": "core-use1-a"}, "network": "core-use1-a",
        "enableReaderRBAC": False}
    assert values["meshConfig"]["trustDomain"] == "acme.example"


def test_outputs_follow_the_published_model_and_hide_secrets(prod: preview.PreviewResult) -> None:
    outputs = StackOutputs.model_validate(prod.outputs)
    assert outputs.schema_version == 2
    assert outputs.kubeconfigs == preview.SECRET
    assert outputs.clusters["core-use1-b"].east_west.internal == "10.11.0.100"
    assert outputs.clusters["edge-use1-a"].ingress == preview.COMPUTED  # it runs ingress services
    assert outputs.clusters["core-use1-a"].ingress is None
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
    how = ("if intended: REFRESH_GOLDEN=1 python3 dev.py test tests/test_program.py, then review the diff of "
           "tests/snapshots/prod.json (the fixture stack's, tests/fixtures/project)")
    assert json.loads(text) == json.loads(SNAPSHOT.read_text()), how
    assert text == SNAPSHOT.read_text(), how


def _project(tmp_path: Path, config: dict[str, object], stack: str = "test") -> Path:
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    body = {"mesh:manifest": str(ROOT / "stacks/prod"), "mesh:istioVersion": "1.31.1",
            "mesh:ingressSourceRanges": ["198.51.100.0/25"], **config}
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(json.dumps({"config": body}))
    return tmp_path


def _edited_project(tmp_path: Path, file: str, old: str, new: str,
                    config: dict[str, object] | None = None) -> Path:
    """A project on a copy of the fixture stack with one edit (every occurrence) in one of its files."""
    manifest = tmp_path / "stack"
    shutil.copytree(ROOT / "stacks/prod", manifest)
    path = manifest / file
    assert old in path.read_text(), f"{old!r} is not in {file}"
    path.write_text(path.read_text().replace(old, new))
    (tmp_path / "project").mkdir()
    return _project(tmp_path / "project", {"mesh:manifest": str(manifest), **(config or {})})


def test_a_shard_manages_only_its_clusters_with_the_shared_root(tmp_path: Path) -> None:
    root = {"mesh:rootCaCertificate": ROOT_CA, "mesh:rootCaKey": {"secure": "v1:abc"}}
    _project(tmp_path, {**root, "mesh:clusters": ["edge-use1-a", "edge-usw1-a"],
                        "mesh:peerStacks": ["acme/fleet-mesh/rest"]})
    others = sorted(set(load(ROOT / "stacks/prod").world.clusters) - {"edge-use1-a", "edge-usw1-a"})
    _project(tmp_path, {**root, "mesh:clusters": others, "mesh:peerStacks": ["acme/fleet-mesh/test"]}, "rest")
    result = preview.run(tmp_path, "test")
    clusters = sorted(r.name for r in of_type(result, "gcp:container/cluster:Cluster"))
    assert clusters == ["edge-use1-a", "edge-usw1-a"]
    assert of_type(result, "tls:index/selfSignedCert:SelfSignedCert") == []
    assert sorted(result.outputs["clusters"]) == clusters
    # The edge host and its attachment belong to edge-euw1-a's stack (first by name): not declared
    # here, and said so on the clusters, so the policy pack leaves them to that stack.
    assert of_type(result, "gcp:compute/sharedVPCServiceProject:SharedVPCServiceProject") == []
    for cluster in of_type(result, "gcp:container/cluster:Cluster"):
        assert cluster.inputs["resourceLabels"]["fleet-mesh-shared-vpc-owner"] == "edge-euw1-a"
    from mesh import policy

    assert policy.check(result.registrations) == []


def test_a_shard_without_the_shared_root_is_refused(tmp_path: Path) -> None:
    project = _project(tmp_path, {"mesh:clusters": ["edge-use1-a"]})
    with pytest.raises(pulumi.RunError, match="needs the fleet's shared root CA"):
        preview.run(project, "test")
    # A run that stopped on an error leaves nothing behind that would hang the next one.
    assert len(preview.run(ROOT, "prod").registrations) > 500


def test_bad_stack_config_is_a_clear_error(tmp_path: Path) -> None:
    project = _project(tmp_path, {"mesh:istioVersion": "latest"})
    with pytest.raises(ManifestError, match=r"Pulumi.test.yaml:1: mesh:istioVersion: 'latest' is not an Istio "
                                            r"version such as 1\.31\.1"):
        preview.run(project, "test")


def test_manifest_errors_surface_with_file_and_line(tmp_path: Path) -> None:
    project = _edited_project(tmp_path, "services/payments.yaml", "ledger.svc.acme.example", "ledgr.svc.acme.example")
    with pytest.raises(pulumi.RunError, match=r"services/payments.yaml:\d+: calls\[3\].host: calls unknown host"):
        preview.run(project, "test")


def test_a_shard_calling_an_unpinned_cluster_of_another_shard_is_refused() -> None:
    from mesh.program import PlanError, prepare

    values = {"manifest": str(ROOT / "stacks/prod"), "istioVersion": "1.31.1", "clusters": ["edge-usw1-a"],
              "rootCaCertificate": ROOT_CA, "ingressSourceRanges": ["198.51.100.0/25"]}
    # edge-usw1-a's frontends call media in the other edge clusters and the core tier.
    with pytest.raises(PlanError, match=r"pin no east-west address: core-use1-a, .*edge-use1-a; list the stacks "
                                        "that manage them in mesh:peerStacks"):
        prepare(values, has_root_key=True)
    values["peerStacks"] = ["acme/fleet-mesh/rest"]  # their outputs give the addresses
    assert prepare(values, has_root_key=True).clusters == ("edge-usw1-a",)


# ------------------------------------------------------------------ real Google Cloud (issue 7)

def by_name(result: preview.PreviewResult, kind: str = "gcp:") -> dict[str, preview.Registration]:
    """Resources of one provider by name (names repeat across types: an Address and a Helm release)."""
    return {r.name: r for r in result.registrations if r.type.startswith(kind)}


def test_a_cluster_on_another_projects_network_is_attached_and_granted(prod: preview.PreviewResult) -> None:
    world = load(ROOT / "stacks/prod").world
    names = by_name(prod)
    hosts = {r.inputs["project"] for r in of_type(prod, "gcp:compute/sharedVPCHostProject:SharedVPCHostProject")}
    assert hosts == {"acme-net-core", "acme-net-data", "acme-net-edge"}
    for cluster in of_type(prod, "gcp:container/cluster:Cluster"):
        spec = world.clusters[cluster.name]
        host = world.fleet.networks[spec.network].project
        assert cluster.inputs["subnetwork"] == f"projects/{host}/regions/{spec.region}/subnetworks/{spec.name}"
        number = preview.offline_project_number(spec.project)
        agent = f"serviceAccount:service-{number}@container-engine-robot.iam.gserviceaccount.com"
        attachment = names[f"{spec.project}-on-{host}"]
        assert attachment.inputs["hostProject"] == host and attachment.inputs["serviceProject"] == spec.project
        assert attachment.inputs["deletionPolicy"] == "ABANDON"
        grants = [
            (names[f"{spec.name}-subnet-gke"], "roles/compute.networkUser", agent),
            (names[f"{spec.name}-subnet-cloudservices"], "roles/compute.networkUser",
             f"serviceAccount:{number}@cloudservices.gserviceaccount.com"),
            (names[f"{spec.project}-gke-host-agent-on-{host}"], "roles/container.hostServiceAgentUser", agent),
            (names[f"{spec.project}-gke-firewalls-on-{host}"], f"projects/{host}/roles/fleetMeshGkeFirewalls", agent),
        ]
        for grant, role, member in grants:
            assert (grant.inputs["role"], grant.inputs["member"]) == (role, member), grant.name
            assert grant.urn in cluster.dependencies, (cluster.name, grant.name)
        assert names[f"{spec.name}-subnet-gke"].inputs["subnetwork"] == spec.name
        assert attachment.urn in cluster.dependencies


def test_the_firewall_role_is_the_narrow_one_gke_documents(prod: preview.PreviewResult) -> None:
    for role in of_type(prod, "gcp:projects/iAMCustomRole:IAMCustomRole"):
        assert role.inputs["roleId"] == "fleetMeshGkeFirewalls"
        assert role.inputs["permissions"] == [
            "compute.firewalls.create", "compute.firewalls.delete", "compute.firewalls.get",
            "compute.firewalls.list", "compute.firewalls.update", "compute.networks.updatePolicy"]


def test_every_gcp_resource_waits_for_its_api_in_its_project(prod: preview.PreviewResult) -> None:
    from mesh.infra.apis import api_of, service_resource_name

    services = {r.name: r for r in of_type(prod, "gcp:projects/service:Service")}
    for service in services.values():
        assert service.inputs["disableOnDestroy"] is False
    checked = 0
    for registration in prod.registrations:
        api = api_of(registration.type)
        if not registration.type.startswith("gcp:") or registration.type == "gcp:projects/service:Service":
            continue
        assert api is not None, f"{registration.type} has no entry in mesh/infra/apis.py"
        project = registration.inputs.get("project") or registration.inputs.get("serviceProject")
        if project is None:  # KMS keys and their grants take the project of their key ring
            assert any(services.get(d.rsplit("::", 1)[-1]) is not None
                       and services[d.rsplit("::", 1)[-1]].inputs["service"] == api
                       for d in registration.dependencies), registration.name
        else:
            assert services[service_resource_name(project, api)].urn in registration.dependencies, registration.name
        checked += 1
    assert checked > 100


def test_kubeconfigs_dial_the_iam_authorized_dns_endpoint(prod: preview.PreviewResult) -> None:
    from mesh.infra.gke import kubeconfig

    config = json.loads(kubeconfig("c1", "gke-0123.us-east1.gke.goog"))
    [entry] = config["clusters"]
    assert entry["cluster"] == {"server": "https://gke-0123.us-east1.gke.goog"}  # public CA: no CA data needed
    assert config["users"][0]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
    for cluster in of_type(prod, "gcp:container/cluster:Cluster"):
        endpoints = cluster.inputs["controlPlaneEndpointsConfig"]
        assert endpoints["dnsEndpointConfig"] == {"allowExternalTraffic": True}
        # The IP endpoint stays, for the authorized networks only.
        assert cluster.inputs["masterAuthorizedNetworksConfig"]["cidrBlocks"]
    outputs = StackOutputs.model_validate(prod.outputs)
    assert outputs.clusters["core-use1-a"].dns_endpoint == preview.COMPUTED


def test_binary_authorization_enforces_a_declared_policy(prod: preview.PreviewResult, tmp_path: Path) -> None:
    policies = {r.inputs["project"]: r for r in of_type(prod, "gcp:binaryauthorization/policy:Policy")}
    world = load(ROOT / "stacks/prod").world
    assert set(policies) == {c.project for c in world.clusters.values()}
    for cluster in of_type(prod, "gcp:container/cluster:Cluster"):
        policy = policies[cluster.inputs["project"]]
        assert policy.urn in cluster.dependencies
        patterns = [p["namePattern"] for p in policy.inputs["admissionWhitelistPatterns"]]
        assert {"docker.io/istio/pilot*", "docker.io/istio/proxyv2*",
                "us-docker.pkg.dev/acme-images/**"} <= set(patterns)
        assert not [p for p in patterns if p.endswith("/istio/*")]  # Istio's two images, not all of docker.io/istio
        assert policy.inputs["globalPolicyEvaluationMode"] == "ENABLE"  # Google's own system images
        assert policy.inputs["defaultAdmissionRule"] == {
            "evaluationMode": "ALWAYS_DENY", "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}
    audit_only = preview.run(_project(tmp_path, {}), "test")  # no mesh:allowedImages
    for policy in of_type(audit_only, "gcp:binaryauthorization/policy:Policy"):
        assert policy.inputs["defaultAdmissionRule"]["enforcementMode"] == "DRYRUN_AUDIT_LOG_ONLY"


def test_addresses_are_reserved_where_gke_uses_them(prod: preview.PreviewResult) -> None:
    world = load(ROOT / "stacks/prod").world
    names = by_name(prod)
    for name, spec in world.clusters.items():
        host = world.fleet.networks[spec.network].project
        external = names[f"{name}-eastwest"]
        assert external.inputs["project"] == spec.project  # GKE puts the forwarding rule there
        assert "address" not in external.inputs  # GCP allocates external addresses
        internal = names.get(f"{name}-eastwest-internal")
        if spec.east_west is not None and spec.east_west.internal:
            assert internal is not None
            assert internal.inputs["project"] == spec.project
            assert internal.inputs["subnetwork"] == f"projects/{host}/regions/{spec.region}/subnetworks/{name}"
            assert internal.inputs["purpose"] == "GCE_ENDPOINT"
            assert internal.inputs["address"] == spec.east_west.internal


def test_a_pinned_external_address_is_an_existing_reservation_looked_up(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    project = _edited_project(tmp_path, "fleet.yaml", "      internal: 10.10.0.100\n",
                              "      internal: 10.10.0.100\n      external: 203.0.113.10\n")
    result = preview.run(project, "test")
    assert "core-use1-a-eastwest" not in by_name(result, "gcp:compute/address:")  # looked up, not created
    assert result.outputs["clusters"]["core-use1-a"]["eastWest"]["external"] == "203.0.113.10"
    name, config, secrets = preview.read_stack_config(project, "test")

    def run(world: preview.OfflineWorld) -> None:
        asyncio.run(preview._run(project / "__main__.py", name, "test", config, secrets, world))

    # Found by its address, under whatever name it was reserved.
    run(preview.OfflineWorld(reservations={("acme-core-prod", "us-east1", "platform-team-ip-7"): "203.0.113.10"}))
    # No reservation of that address there (another address, or another region) is refused, naming it.
    for elsewhere in [("acme-core-prod", "us-east1", "core-use1-a-eastwest", "203.0.113.99"),
                      ("acme-core-prod", "us-west1", "core-use1-a-eastwest", "203.0.113.10")]:
        with pytest.raises(Exception, match=re.escape(
                "pins core-use1-a's external east-west address 203.0.113.10, but no reservation in "
                "acme-core-prod/us-east1 holds it")):
            run(preview.OfflineWorld(reservations={elsewhere[:3]: elsewhere[3]}))

    class InternalReservation(preview.OfflineMocks):
        def call(self, args: pulumi.runtime.MockCallArgs) -> Any:  # type: ignore[override]
            answer = super().call(args)
            for found in answer.get("addresses", []) if isinstance(answer, dict) else []:
                found["addressType"] = "INTERNAL"
            return answer

    monkeypatch.setattr(preview, "OfflineMocks", InternalReservation)
    with pytest.raises(Exception, match="reserves it as INTERNAL: an external load balancer needs an EXTERNAL"):
        run(preview.OfflineWorld(reservations={("acme-core-prod", "us-east1", "x"): "203.0.113.10"}))


def test_nodes_exist_before_anything_is_installed(prod: preview.PreviewResult) -> None:
    names = {**by_name(prod), **by_name(prod, "fleet-mesh:")}
    for provider in of_type(prod, "pulumi:providers:kubernetes"):
        cluster = provider.name.removesuffix("-k8s")
        pools = [r for r in of_type(prod, "gcp:container/nodePool:NodePool") if r.inputs["cluster"] == cluster]
        assert pools and all(pool.urn in provider.dependencies for pool in pools)
    for pool in of_type(prod, "gcp:container/nodePool:NodePool"):
        assert pool.inputs["initialNodeCount"] >= 1
        taints = pool.inputs["nodeConfig"].get("taints", [])
        spot = {"key": "cloud.google.com/gke-spot", "value": "true", "effect": "NO_SCHEDULE"}
        assert (spot in taints) == bool(pool.inputs["nodeConfig"]["spot"]), pool.name
    assert names["core-use1-b-batch-spot"].inputs["nodeConfig"]["spot"] is True
    [cluster] = [r for r in of_type(prod, "gcp:container/cluster:Cluster") if r.name == "core-use1-a"]
    assert names["core-use1-a-nodes"].urn in cluster.dependencies  # the default pool's identity
    assert cluster.inputs["nodeConfig"]["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}


def test_cloud_nat_is_sized_for_the_mesh(prod: preview.PreviewResult) -> None:
    from mesh.infra.network import nat_address_count
    from mesh.manifest import schema

    for nat in of_type(prod, "gcp:compute/routerNat:RouterNat"):
        assert nat.inputs["enableDynamicPortAllocation"] is True
        assert nat.inputs["enableEndpointIndependentMapping"] is False
        assert (nat.inputs["minPortsPerVm"], nat.inputs["maxPortsPerVm"]) == (1024, 16384)
        assert nat.inputs["logConfig"] == {"enable": True, "filter": "ERRORS_ONLY"}
    # 1024 ports for each of 70 nodes is more than one address's 64,512.
    pool = schema.NodePool(name="p", machine_type="e2-standard-4", min_nodes=1, max_nodes=35)
    clusters = [schema.Cluster(name=f"c{i}", project="acme-proj", region="us-east1", zones=["us-east1-b"], network="n",
                               tier="t", node_pools=[pool]) for i in range(2)]
    assert nat_address_count(clusters) == 2
    assert nat_address_count(clusters[:1]) == 1


def test_oci_chart_repositories_are_chart_references(tmp_path: Path) -> None:
    project = _project(tmp_path, {"mesh:chartRepository": "oci://ghcr.io/istio/release/charts"})
    releases = of_type(preview.run(project, "test"), "kubernetes:helm.sh/v3:Release")
    assert releases
    for release in releases:
        assert release.inputs["chart"].startswith("oci://ghcr.io/istio/release/charts/")
        assert "repositoryOpts" not in release.inputs


def test_shards_read_each_others_addresses_from_their_outputs(tmp_path: Path) -> None:
    root = {"mesh:rootCaCertificate": ROOT_CA, "mesh:rootCaKey": {"secure": "v1:abc"}}
    core = ["core-use1-a", "core-use1-b", "core-usw1-a", "data-use1-a", "data-usw1-a"]
    _project(tmp_path, {**root, "mesh:clusters": core, "mesh:peerStacks": ["acme/fleet-mesh/edge"]}, "core")
    _project(tmp_path, {**root, "mesh:clusters": ["edge-use1-a", "edge-usw1-a", "edge-euw1-a"],
                        "mesh:peerStacks": ["acme/fleet-mesh/core"]}, "edge")
    core_result = preview.run(tmp_path, "core")
    edge = preview.run(tmp_path, "edge")
    refs = of_type(edge, "pulumi:pulumi:StackReference")
    assert [r.inputs["name"] for r in refs] == ["acme/fleet-mesh/core"]
    assert core_result.outputs["natAddresses"] and edge.outputs["natAddresses"]
    # The edge clusters' firewalls admit the core shard's NAT addresses (unknown offline, but read).
    firewall = by_name(edge, "gcp:compute/firewall:")["edge-use1-a-eastwest-external"]
    assert firewall.inputs["sourceRanges"] == [f"{preview.COMPUTED}/32"]


def test_a_gateway_open_to_everyone_is_refused_before_anything_is_registered(tmp_path: Path) -> None:
    with pytest.raises(pulumi.RunError, match="needs mesh:ingressSourceRanges"):
        preview.run(_project(tmp_path, {"mesh:ingressSourceRanges": []}), "test")


def test_namespaces_and_ca_keys_survive_removal(prod: preview.PreviewResult) -> None:
    for key in of_type(prod, "tls:index/privateKey:PrivateKey"):
        assert key.protect, key.name
    # A team's namespace leaving the stack must not take its Deployments, Secrets and volumes along.
    namespaces = [r for r in of_type(prod, "kubernetes:core/v1:Namespace") if "/" in r.name]
    assert len(namespaces) > 30 and all(r.retain_on_delete for r in namespaces)


def test_compiled_namespaces_use_the_installed_revision(prod: preview.PreviewResult) -> None:
    services = set(load(ROOT / "stacks/prod").world.namespace_of.values())
    namespaces = [r for r in of_type(prod, "kubernetes:core/v1:Namespace")
                  if "/" in r.name and r.inputs["metadata"]["name"] in services]
    assert len(namespaces) > 30  # where services run; `mesh-imports` holds config only, nothing to inject
    for namespace in namespaces:
        labels = namespace.inputs["metadata"]["labels"]
        assert labels["istio.io/rev"] == "1-31-1" and "istio-injection" not in labels
    outputs = StackOutputs.model_validate(prod.outputs)
    assert {c.istio_revision for c in outputs.clusters.values()} == {"1-31-1"}


def test_a_canary_revision_is_installed_beside_the_serving_one(tmp_path: Path) -> None:
    project = _project(tmp_path, {"mesh:istioRevisions": ["1.31.1", "1.32.0"]})
    result = preview.run(project, "test")
    istiods = [r for r in of_type(result, "kubernetes:helm.sh/v3:Release")
               if r.name.startswith("core-use1-a-istiod")]
    assert sorted(r.inputs["version"] for r in istiods) == ["1.31.1", "1.32.0"]
    outputs = result.outputs["clusters"]["core-use1-a"]
    assert outputs["istioRevision"] == "1-31-1" and outputs["istioRevisions"] == ["1-31-1", "1-32-0"]
    with pytest.raises(ManifestError,
                       match=r"mesh:istioRevisions: istioVersion 1\.31\.1 must be one of istioRevisions"):
        preview.run(_project(tmp_path, {"mesh:istioRevisions": ["1.32.0"]}), "test")


def test_a_cluster_is_decommissioned_in_two_changes(tmp_path: Path) -> None:
    from mesh import policy

    with pytest.raises(pulumi.RunError, match="decommission: edge-usw1-a still runs api-gateway, web-frontend"):
        preview.run(_project(tmp_path, {"mesh:decommission": ["edge-usw1-a"]}), "test")
    project = _edited_project(tmp_path, "locations.yaml", "[edge-use1-a, edge-usw1-a, edge-euw1-a]",
                              "[edge-use1-a, edge-euw1-a]", {"mesh:decommission": ["edge-usw1-a"]})
    result = preview.run(project, "test")
    clusters = {r.name: r for r in of_type(result, "gcp:container/cluster:Cluster")}
    assert not clusters["edge-usw1-a"].protect and clusters["edge-usw1-a"].inputs["deletionProtection"] is False
    assert all(c.protect and c.inputs["deletionProtection"] for n, c in clusters.items() if n != "edge-usw1-a")
    assert policy.check(result.registrations) == []  # the pack knows a decommissioned cluster by its label


def test_a_stack_too_large_is_warned_about_before_registering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mesh.infra import fleet

    monkeypatch.setattr(fleet, "STACK_RESOURCE_LIMIT", 100)  # the example stack holds ~770
    result = preview.run(_project(tmp_path, {}), "test")
    [warning] = result.warnings
    assert "more than 100: split it into shards with mesh:clusters" in warning


def test_the_example_stack_is_small_enough(prod: preview.PreviewResult) -> None:
    assert prod.warnings == []


def test_a_shard_compiles_only_its_own_clusters(monkeypatch: pytest.MonkeyPatch) -> None:
    from mesh.compile import compile_cluster
    from mesh.infra import plan

    compiled: list[str] = []

    def counting(world: object, cluster: str, *args: object) -> list[dict[str, object]]:
        compiled.append(cluster)
        return compile_cluster(world, cluster, *args)  # type: ignore[arg-type]

    monkeypatch.setattr("mesh.compile.compile_cluster", counting)
    values = {"manifest": str(ROOT / "stacks/prod"), "istioVersion": "1.31.1", "clusters": ["edge-usw1-a"],
              "rootCaCertificate": ROOT_CA, "ingressSourceRanges": ["198.51.100.0/25"],
              "peerStacks": ["acme/fleet-mesh/rest"]}
    shard = plan.prepare(values, has_root_key=True)
    assert compiled == ["edge-usw1-a"] and list(shard.compiled) == ["edge-usw1-a"]
    assert len(shard.world.clusters) == 8  # the model is still the whole fleet


def test_an_egress_gateway_runs_exactly_where_a_caller_needs_it(prod: preview.PreviewResult) -> None:
    from mesh.compile import egress

    needed = set(egress.gateway_clusters(load(ROOT / "stacks/prod").world))
    assert needed  # payments calls Stripe through the gateway
    releases = {r.name.removesuffix("-egress"): r for r in of_type(prod, "kubernetes:helm.sh/v3:Release")
                if r.name.endswith("-egress")}
    assert set(releases) == needed
    for release in releases.values():
        assert (release.inputs["name"], release.inputs["namespace"]) == ("istio-egressgateway", "istio-egress")
        assert release.inputs["values"]["service"]["type"] == "ClusterIP"  # reached from sidecars only
    clusters = prod.outputs["clusters"]
    assert {name for name, c in clusters.items() if c["egress"]} == needed


def test_google_api_names_resolve_to_the_private_vips_in_every_vpc(prod: preview.PreviewResult) -> None:
    zones = of_type(prod, "gcp:dns/managedZone:ManagedZone")
    networks = of_type(prod, "gcp:compute/network:Network")
    assert len(zones) == len(networks) == 5
    for zone in zones:
        assert (zone.inputs["dnsName"], zone.inputs["visibility"]) == ("googleapis.com.", "private")
        [bound] = zone.inputs["privateVisibilityConfig"]["networks"]
        assert bound["networkUrl"].startswith(f"projects/{zone.inputs['project']}/global/networks/")
    records = {(r.inputs["name"], r.inputs["type"]): r.inputs["rrdatas"]
               for r in of_type(prod, "gcp:dns/recordSet:RecordSet")}
    assert records[("private.googleapis.com.", "A")] == ["199.36.153.8", "199.36.153.9", "199.36.153.10",
                                                         "199.36.153.11"]
    assert records[("*.googleapis.com.", "CNAME")] == ["private.googleapis.com."]


def test_the_canary_runbook_steps(tmp_path: Path) -> None:
    """Install beside, move, remove: what each step of the README's upgrade runbook declares."""
    def step(config: dict[str, object]) -> tuple[list[str], str, set[str]]:
        result = preview.run(_project(tmp_path, {"mesh:istioVersion": "1.31.1", **config}), "test")
        releases = of_type(result, "kubernetes:helm.sh/v3:Release")
        istiods = sorted(r.inputs["values"]["revision"] for r in releases if r.name.startswith("core-use1-a-istiod"))
        gateway = next(r for r in releases if r.name == "core-use1-a-eastwest").inputs["values"]["revision"]
        namespaces = [r.inputs["metadata"]["labels"] for r in of_type(result, "kubernetes:core/v1:Namespace")
                      if r.name.startswith("core-use1-a/Namespace/")]
        labels = {n["istio.io/rev"] for n in namespaces if "istio.io/rev" in n}
        return istiods, gateway, labels

    assert step({"mesh:istioRevisions": ["1.31.1", "1.32.0"]}) == (["1-31-1", "1-32-0"], "1-31-1", {"1-31-1"})
    assert step({"mesh:istioRevisions": ["1.31.1", "1.32.0"], "mesh:istioVersion": "1.32.0"}) == (
        ["1-31-1", "1-32-0"], "1-32-0", {"1-32-0"})
    assert step({"mesh:istioVersion": "1.32.0"}) == (["1-32-0"], "1-32-0", {"1-32-0"})


def test_an_external_gateway_admits_only_the_nat_of_its_remote_callers() -> None:
    from mesh.infra.plan import prepare

    plan = prepare({"manifest": str(ROOT / "stacks/prod"), "istioVersion": "1.31.1",
                    "ingressSourceRanges": ["198.51.100.0/25"]}, has_root_key=False)
    # The PCI data tier is called by core only: no edge NAT may reach it, though edge runs NAT too.
    assert plan.remote_callers["data-use1-a"] == (("core", "us-east1"), ("core", "us-west1"))
    # Callers on the same VPC dial the internal address, so they never count.
    assert all(net != "core" for net, _ in plan.remote_callers["core-use1-a"])
    assert ("edge-use1", "us-east1") in plan.remote_callers["core-use1-a"]


def test_a_cluster_nobody_outside_its_vpc_calls_gets_no_external_load_balancer(tmp_path: Path) -> None:
    from mesh.infra import plan as planning

    original = planning.remote_callers

    def quiet_data(world: object, managed: set[str]) -> dict[str, tuple[tuple[str, str], ...]]:
        found = original(world, managed)  # type: ignore[arg-type]
        return {**found, "data-usw1-a": ()}

    planning.remote_callers = quiet_data  # type: ignore[assignment]
    try:
        result = preview.run(_project(tmp_path, {}), "test")
    finally:
        planning.remote_callers = original  # type: ignore[assignment]
    services = {r.name for r in of_type(result, "kubernetes:core/v1:Service")}
    rules = {r.name for r in of_type(result, "gcp:compute/firewall:Firewall")}
    assert "data-use1-a-eastwest-external" in services and "data-usw1-a-eastwest-external" not in services
    assert "data-use1-a-eastwest-external" in rules and "data-usw1-a-eastwest-external" not in rules
    assert "data-usw1-a-eastwest-internal" in services  # its VPC peers still reach it


def test_secrets_in_etcd_are_encrypted_with_a_protected_regional_key(prod: preview.PreviewResult) -> None:
    world = load(ROOT / "stacks/prod").world
    rings = by_name(prod, "gcp:kms/keyRing:")
    keys = by_name(prod, "gcp:kms/cryptoKey:")
    grants = by_name(prod, "gcp:kms/cryptoKeyIAMMember:")
    for cluster in of_type(prod, "gcp:container/cluster:Cluster"):
        spec = world.clusters[cluster.name]
        ring, key = rings[f"{spec.name}-secrets"], keys[f"{spec.name}-secrets"]
        grant = grants[f"{spec.name}-secrets-gke"]
        assert ring.inputs["location"] == spec.region  # GKE needs the key in the cluster's location
        assert key.protect and key.inputs["rotationPeriod"] == "7776000s"
        assert grant.inputs["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
        assert grant.inputs["member"].startswith("serviceAccount:service-")
        assert cluster.inputs["databaseEncryption"]["state"] == "ENCRYPTED"
        assert grant.urn in cluster.dependencies and key.urn in cluster.dependencies
        private = cluster.inputs["privateClusterConfig"]
        assert private["enablePrivateEndpoint"] is True  # no public IP endpoint: CI uses the DNS endpoint
        assert cluster.inputs["masterAuthorizedNetworksConfig"]["privateEndpointEnforcementEnabled"] is True


def test_a_shard_whose_callers_nat_is_unknown_is_refused_unless_ranges_are_given(tmp_path: Path) -> None:
    root = {"mesh:rootCaCertificate": ROOT_CA, "mesh:rootCaKey": {"secure": "v1:abc"},
            "mesh:clusters": ["data-use1-a"], "mesh:peerStacks": ["acme/fleet-mesh/rest"]}
    others = {c: {"managed": True, "eastWest": {"external": "203.0.113.50", "internal": "10.0.0.50"}}
              for c in load(ROOT / "stacks/prod").world.clusters if c != "data-use1-a"}
    peer = {"clusters": others, "natAddresses": [], "natAddressesByRegion": {}}  # the peer exports no NAT

    def run(config: dict[str, object]) -> preview.PreviewResult:
        folder = tmp_path / f"p{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        project = _project(folder, config)
        name, values, secrets = preview.read_stack_config(project, "test")
        world = preview.OfflineWorld(stack_outputs={"acme/fleet-mesh/rest": peer})
        return asyncio.run(preview._run(project / "__main__.py", name, "test", values, secrets, world))

    with pytest.raises(Exception, match="data-use1-a is called from core/us-east1, core/us-west1, but no NAT address"):
        run(root)
    given = run({**root, "mesh:eastWestSourceRanges": ["100.64.0.0/10"]})  # hand-set ranges stand in
    rule = by_name(given, "gcp:compute/firewall:")["data-use1-a-eastwest-external"]
    assert rule.inputs["sourceRanges"] == ["100.64.0.0/10"]
