"""One behaviour per test for each object builder, on the small manifest of tests/manifests.py.

alpha (edge, e1, ingress) calls beta and gamma:9090; beta (core) is primary in c1, standby in c2,
and calls gamma; gamma runs active-active in c1 and c2. c1 and c2 share a network; e1 does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesh.compile import CompileOptions, compile_cluster, weights
from mesh.manifest import load, rules
from mesh.model import World

import manifests

L = "locations.yaml"


def world_of(tmp_path: Path, edits: list[tuple[str, str, str]] | None = None) -> World:
    return load(manifests.write(tmp_path / "stack", manifests.edited(edits or []))).world


def objects(world: World, cluster: str, kind: str, **options: Any) -> dict[str, dict[str, Any]]:
    """`namespace/name` → object of one kind in one cluster."""
    out = compile_cluster(world, cluster, CompileOptions(**options))
    return {f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}": o for o in out if o["kind"] == kind}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return world_of(tmp_path)


def test_namespaces_are_those_services_run_in_plus_one_for_imports(world: World) -> None:
    assert sorted(objects(world, "c1", "Namespace")) == ["/beta", "/gamma"], "c1 calls only what it runs"
    namespaces = objects(world, "e1", "Namespace")
    assert sorted(namespaces) == ["/alpha", "/mesh-imports"], "e1 calls beta and gamma: one namespace for both"
    assert namespaces["/alpha"]["metadata"]["labels"]["istio-injection"] == "enabled"
    assert namespaces["/mesh-imports"]["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "fleet-mesh"}, \
        "config only: nothing to inject"
    revisioned = objects(world, "e1", "Namespace", revision="1-31")["/alpha"]["metadata"]["labels"]
    assert revisioned["istio.io/rev"] == "1-31" and "istio-injection" not in revisioned


def test_imported_services_live_in_mesh_imports_exported_to_their_callers_only(world: World) -> None:
    for kind in ("ServiceEntry", "DestinationRule"):
        found = objects(world, "e1", kind)
        assert sorted(found) == ["alpha/alpha", "mesh-imports/beta", "mesh-imports/gamma"], kind
        assert found["mesh-imports/beta"]["spec"]["exportTo"] == ["alpha"], kind
    assert "mesh-imports" in rules.RESERVED_NAMESPACES, "no service may run in the imports namespace"


def test_peer_authentication_is_strict_mesh_wide_in_every_cluster(world: World) -> None:
    for cluster in world.clusters:
        [policy] = objects(world, cluster, "PeerAuthentication").values()
        assert policy["metadata"] | {"labels": None} == {"name": "default", "namespace": "istio-system",
                                                        "labels": None}
        assert policy["spec"] == {"mtls": {"mode": "STRICT"}}


def test_gateway_exposes_exactly_the_local_services_called_from_elsewhere(world: World) -> None:
    [gateway] = objects(world, "c1", "Gateway").values()
    [server] = gateway["spec"]["servers"]
    assert server["port"] == {"number": 15443, "name": "tls", "protocol": "TLS"}
    assert server["tls"] == {"mode": "AUTO_PASSTHROUGH"}
    assert server["hosts"] == ["beta.svc.test.example", "gamma.svc.test.example"]
    assert sorted(objects(world, "e1", "Gateway")) == ["istio-ingress/ingress-gateway"], \
        "alpha runs only in e1: no ingress elsewhere fails over to it, so no east-west gateway"


def test_service_entry_selects_local_pods_where_the_service_runs(world: World) -> None:
    entry = objects(world, "c1", "ServiceEntry")["gamma/gamma"]["spec"]
    assert entry["workloadSelector"] == {"labels": {"app": "gamma"}}
    assert "endpoints" not in entry
    assert entry["location"] == "MESH_INTERNAL" and entry["resolution"] == "STATIC"
    assert entry["ports"] == [{"number": 8080, "name": "http", "protocol": "HTTP"},
                              {"number": 9090, "name": "grpc", "protocol": "GRPC"}]
    assert entry["subjectAltNames"] == ["spiffe://test.example/ns/gamma/sa/gamma"]
    assert entry["exportTo"] == ["beta", "gamma", "istio-system"]


def test_service_entry_is_identical_in_host_and_ports_in_every_cluster(world: World) -> None:
    seen = {c: objects(world, c, "ServiceEntry")[f"{ns}/gamma"]["spec"]
            for c, ns in (("c1", "gamma"), ("c2", "gamma"), ("e1", "mesh-imports"))}
    assert len({str((s["hosts"], s["ports"])) for s in seen.values()}) == 1


def test_caller_only_cluster_gets_inline_endpoints_at_external_addresses(world: World) -> None:
    entry = objects(world, "e1", "ServiceEntry")["mesh-imports/beta"]["spec"]
    assert "workloadSelector" not in entry
    assert entry["exportTo"] == ["alpha"], "its callers only: e1 does not serve beta, nor run it"
    assert entry["endpoints"] == [
        {"address": "192.0.2.1", "ports": {"http": 15443},
         "labels": {"security.istio.io/tlsMode": "istio", "fleet-mesh.io/cluster": "c1",
                    "fleet-mesh.io/role": "primary"},
         "network": "c1", "locality": "us-east1"},
        {"address": "192.0.2.2", "ports": {"http": 15443},
         "labels": {"security.istio.io/tlsMode": "istio", "fleet-mesh.io/cluster": "c2",
                    "fleet-mesh.io/role": "standby", "fleet-mesh.io/standby": "true"},
         "network": "c2", "locality": "us-west1"},
    ]


def test_workload_entries_use_internal_address_on_a_shared_network(world: World) -> None:
    entries = objects(world, "c1", "WorkloadEntry")
    assert sorted(entries) == ["gamma/gamma.c2"], "beta is not called from c1: no way out needed"
    spec = entries["gamma/gamma.c2"]["spec"]
    assert spec == {
        "address": "10.0.0.2", "ports": {"http": 15443, "grpc": 15443},
        "labels": {"app": "gamma", "fleet-mesh.io/cluster": "c2", "security.istio.io/tlsMode": "istio"},
        "network": "c2", "locality": "us-west1",
    }


def test_zonal_cluster_locality_includes_its_zone(tmp_path: Path) -> None:
    world = world_of(tmp_path, [(L, "gamma: [c1, c2]", "gamma: [c1, c2]\ndelta: [e1]"),
                                ("services/delta.yaml", "", manifests.SERVICE_A.replace("alpha", "delta")
                                 .replace("ingress: true\n", "").replace("calls:\n  - beta.svc.test.example\n"
                                 "  - host: gamma.svc.test.example\n    port: 9090\n", "")),
                                ("services/alpha.yaml", "  - beta.svc.test.example\n",
                                 "  - beta.svc.test.example\n  - delta.svc.test.example\n")])
    # alpha and delta both run only in e1: the call stays local, so no endpoint names e1's zone.
    assert "endpoints" not in objects(world, "e1", "ServiceEntry")["delta/delta"]["spec"]
    assert world.locality("e1") == "europe-west1/europe-west1-b"
    assert world.locality("c1") == "us-east1"


def test_destination_rule_mutual_tls_failover_and_ejection(world: World) -> None:
    rule = objects(world, "e1", "DestinationRule")["mesh-imports/gamma"]["spec"]
    assert rule["trafficPolicy"]["tls"] == {"mode": "ISTIO_MUTUAL",
                                            "subjectAltNames": ["spiffe://test.example/ns/gamma/sa/gamma"]}
    locality = rule["trafficPolicy"]["loadBalancer"]["localityLbSetting"]
    assert locality == {"enabled": True, "failoverPriority": [
        "topology.kubernetes.io/region", "topology.istio.io/network", "topology.kubernetes.io/zone"]}
    outlier = rule["trafficPolicy"]["outlierDetection"]
    assert outlier["maxEjectionPercent"] == 100
    assert outlier["minHealthPercent"] == 0
    assert outlier["consecutive5xxErrors"] == 0 and outlier["consecutiveGatewayErrors"] == 5
    assert "subsets" not in rule


def test_destination_rule_only_where_the_service_is_called(world: World) -> None:
    assert sorted(objects(world, "c1", "DestinationRule")) == ["gamma/gamma"]
    assert sorted(objects(world, "e1", "DestinationRule")) == ["alpha/alpha", "mesh-imports/beta",
                                                                "mesh-imports/gamma"], \
        "the ingress gateway calls alpha in e1"


def test_standbys_rank_last_for_callers_beside_a_primary_or_nowhere(world: World) -> None:
    rule = objects(world, "e1", "DestinationRule")["mesh-imports/beta"]["spec"]
    assert rule["trafficPolicy"]["loadBalancer"]["localityLbSetting"]["failoverPriority"][0] == \
        "fleet-mesh.io/standby="


def test_callers_beside_a_standby_prefer_remote_primaries(tmp_path: Path) -> None:
    world = world_of(tmp_path, [("services/gamma.yaml", "", "calls: [beta.svc.test.example]\n")])
    first = {c: objects(world, c, "DestinationRule")["beta/beta"]["spec"]["trafficPolicy"]["loadBalancer"]
             ["localityLbSetting"]["failoverPriority"][0] for c in ("c1", "c2")}
    assert first == {"c1": "fleet-mesh.io/standby=", "c2": "fleet-mesh.io/role=primary"}


def test_outlier_thresholds_come_from_the_service(tmp_path: Path) -> None:
    world = world_of(tmp_path, [("services/gamma.yaml", "", "traffic:\n  outlier: {consecutiveGatewayErrors: 2,"
                                 " interval: 1s, baseEjectionTime: 1m, minHealthPercent: 50}\n")])
    outlier = objects(world, "e1", "DestinationRule")["mesh-imports/gamma"]["spec"]["trafficPolicy"]["outlierDetection"]
    assert outlier == {"consecutiveGatewayErrors": 2, "consecutive5xxErrors": 0, "interval": "1s",
                       "baseEjectionTime": "1m", "maxEjectionPercent": 100, "minHealthPercent": 50}


def test_virtual_service_carries_timeout_and_retries_for_callers_only(world: World) -> None:
    assert objects(world, "c1", "VirtualService") == {}, "beta has a policy but no caller in c1"
    service = objects(world, "e1", "VirtualService")["mesh-imports/beta"]["spec"]
    assert service["exportTo"] == ["alpha"]
    assert service["http"] == [{
        "route": [{"destination": {"host": "beta.svc.test.example", "port": {"number": 8080}}}],
        "timeout": "2s",
        "retries": {"attempts": 2, "retryRemoteLocalities": True},
    }]


ZONES = [("fleet.yaml", "    region: us-east1\n", "    region: us-east1\n    zones: [us-east1-b, us-east1-c]\n"),
         ("fleet.yaml", "    region: us-west1\n", "    region: us-west1\n    zones: [us-west1-a]\n")]
WEIGHTED = ZONES + [(L, "gamma: [c1, c2]", "gamma: [{cluster: c1, weight: 90}, {cluster: c2, weight: 9}, "
                                        "{cluster: c3, weight: 1}]"),
                    ("fleet.yaml", "  - name: e1\n", "  - name: c3\n    project: proj-core\n    region: us-east1\n"
                     "    zones: [us-east1-b, us-east1-c, us-east1-d]\n    network: shared\n    tier: core\n"
                     "    eastWest: {internal: 10.0.0.4, external: 192.0.2.4}\n  - name: e1\n")]


def test_weighted_service_splits_by_locality_weights_not_routes(tmp_path: Path) -> None:
    world = world_of(tmp_path, WEIGHTED)
    assert "gamma/gamma" not in objects(world, "e1", "VirtualService"), "no route: gamma has no timeout or retries"
    policy = objects(world, "e1", "DestinationRule")["mesh-imports/gamma"]["spec"]["trafficPolicy"]
    assert policy["loadBalancer"]["localityLbSetting"] == {"enabled": True, "distribute": [{"from": "*", "to": {
        "us-east1/us-east1-b/c1": 90, "us-east1/us-east1-b/c3": 1, "us-west1/us-west1-a/c2": 9}}]}
    assert policy["outlierDetection"]["maxEjectionPercent"] == 100, "ejection hands a dead cluster's share on"
    endpoints = objects(world, "e1", "ServiceEntry")["mesh-imports/gamma"]["spec"]["endpoints"]
    assert [e["locality"] for e in endpoints] == ["us-east1/us-east1-b/c1", "us-west1/us-west1-a/c2",
                                                  "us-east1/us-east1-b/c3"]


def test_a_serving_caller_weighs_each_of_its_zones(tmp_path: Path) -> None:
    world = world_of(tmp_path, WEIGHTED)
    to = objects(world, "c1", "DestinationRule")["gamma/gamma"]["spec"]["trafficPolicy"]["loadBalancer"][
        "localityLbSetting"]["distribute"][0]["to"]
    assert to == {"us-east1/us-east1-b/c1": 45, "us-east1/us-east1-c/c1": 45, "us-east1/us-east1-b/c3": 1,
                  "us-west1/us-west1-a/c2": 9}
    assert "gamma/gamma" not in objects(world, "c3", "DestinationRule"), "nothing in c3 dials gamma"
    # Were it dialled there: c3 has 1 point for 3 zones, and Istio takes weights of 1-100 only, so
    # each zone gets 1, taken from the largest key; total still 100.
    assert weights.distribute(world, "gamma", "c3") == [{"from": "*", "to": {
        "us-east1/us-east1-b/c1": 88, "us-east1/us-east1-b/c3": 1, "us-east1/us-east1-c/c3": 1,
        "us-east1/us-east1-d/c3": 1, "us-west1/us-west1-a/c2": 9}}]


def test_weighted_rule_only_where_dialled_and_without_subsets(tmp_path: Path) -> None:
    world = world_of(tmp_path, WEIGHTED + [("services/beta.yaml", "calls:\n  - gamma.svc.test.example\n", "")])
    # Nothing in c1 calls gamma now; its gateway needs no rule: the SNI carries no subset.
    assert "gamma/gamma" not in objects(world, "c1", "DestinationRule")
    for cluster in ("c1", "c2", "c3", "e1"):
        for rule in objects(world, cluster, "DestinationRule").values():
            assert "subsets" not in rule["spec"]


def test_sidecar_imports_exactly_the_declared_calls(world: World) -> None:
    sidecars = objects(world, "e1", "Sidecar")
    assert sorted(sidecars) == ["alpha/default"], "no Sidecar where nothing runs"
    spec = sidecars["alpha/default"]["spec"]
    assert spec["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    assert spec["egress"] == [{"hosts": ["./*.svc.cluster.local", "istio-system/*",
                                         "mesh-imports/beta.svc.test.example", "mesh-imports/gamma.svc.test.example"]}]
    strict = objects(world, "e1", "Sidecar", namespace_local_egress=False)["alpha/default"]["spec"]
    assert strict["egress"][0]["hosts"] == ["istio-system/*", "mesh-imports/beta.svc.test.example",
                                            "mesh-imports/gamma.svc.test.example"]


def test_authorization_denies_by_default_and_allows_declared_callers_per_port(world: World) -> None:
    policies = objects(world, "c1", "AuthorizationPolicy")
    assert sorted(policies) == ["beta/beta-callers", "beta/default-deny", "gamma/default-deny",
                                "gamma/gamma-callers"]
    assert policies["gamma/default-deny"]["spec"] == {}
    gamma = policies["gamma/gamma-callers"]["spec"]
    assert gamma["selector"] == {"matchLabels": {"app": "gamma"}}
    assert gamma["action"] == "ALLOW"
    assert gamma["rules"] == [
        {"from": [{"source": {"principals": ["test.example/ns/beta/sa/beta"]}}],
         "to": [{"operation": {"ports": ["8080", "9090"]}}]},
        {"from": [{"source": {"principals": ["test.example/ns/alpha/sa/alpha"]}}],
         "to": [{"operation": {"ports": ["9090"]}}]},
    ]


def test_ingress_services_admit_the_ingress_gateway(world: World) -> None:
    alpha = objects(world, "e1", "AuthorizationPolicy")["alpha/alpha-callers"]["spec"]
    assert alpha["rules"] == [{
        "from": [{"source": {"principals": ["test.example/ns/istio-ingress/sa/istio-ingressgateway"]}}],
        "to": [{"operation": {"ports": ["8080"]}}],
    }]


def test_the_ingress_gateway_is_admitted_only_on_the_published_port(tmp_path: Path) -> None:
    world = world_of(tmp_path, [("services/alpha.yaml", "  - {name: http, number: 8080, protocol: HTTP}\n",
                                 "  - {name: db, number: 5432, protocol: TCP}\n"
                                 "  - {name: http, number: 8080, protocol: HTTP}\n")])
    alpha = objects(world, "e1", "AuthorizationPolicy")["alpha/alpha-callers"]["spec"]
    assert alpha["rules"][0]["to"] == [{"operation": {"ports": ["8080"]}}]


def test_every_object_names_its_manager_and_per_service_objects_their_source(world: World) -> None:
    for obj in compile_cluster(world, "e1"):
        metadata = obj["metadata"]
        assert metadata["labels"]["app.kubernetes.io/managed-by"] == "fleet-mesh"
        if obj["kind"] in ("ServiceEntry", "WorkloadEntry", "DestinationRule", "VirtualService"):
            service = metadata["labels"]["fleet-mesh.io/service"]
            assert metadata["annotations"]["fleet-mesh.io/source"] == f"services/{service}.yaml"


def test_unpinned_east_west_address_becomes_a_marked_placeholder(tmp_path: Path) -> None:
    world = world_of(tmp_path, [("fleet.yaml", "eastWest: {internal: 10.0.0.1, external: 192.0.2.1}",
                                 "eastWest: {internal: 10.0.0.1}")])
    endpoints = objects(world, "e1", "ServiceEntry")["mesh-imports/gamma"]["spec"]["endpoints"]
    assert endpoints[0]["address"] == "c1.external.eastwest.unresolved.invalid"
    assert endpoints[1]["address"] == "192.0.2.2"
