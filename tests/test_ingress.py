"""North-south ingress: what each cluster's ingress gateway is told, and where a public request ends.

On the small manifest of tests/manifests.py: alpha (ingress, HTTP 8080) runs only in e1; edits make
beta (primary c1, standby c2, timeout and retries) or gamma (c1 and c2, HTTP + GRPC) ingress too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from mesh.compile import compile_cluster, compile_fleet
from mesh.manifest import load
from mesh.model import World
from mesh.simulate import Mesh, facts_from_world, shares
from mesh.verify import verify

import manifests
import stack_fixture
from istio_schema import assert_valid

L = "locations.yaml"
INGRESS_NS = "istio-ingress"
PRINCIPAL = "test.example/ns/istio-ingress/sa/istio-ingressgateway"
BETA_INGRESS = ("services/beta.yaml", "tier: core\n", "tier: core\ningress: true\n")
GAMMA_INGRESS = ("services/gamma.yaml", "tier: core\n", "tier: core\ningress: true\n")


def world_of(tmp_path: Path, edits: list[tuple[str, str, str]] | None = None) -> World:
    return load(manifests.write(tmp_path / "stack", manifests.edited(edits or []))).world


def objects(world: World, cluster: str, kind: str) -> dict[str, dict[str, Any]]:
    out = compile_cluster(world, cluster)
    return {f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}": o for o in out if o["kind"] == kind}


def ingress_objects(world: World, cluster: str) -> list[str]:
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in compile_cluster(world, cluster)
                  if o["metadata"].get("namespace") == INGRESS_NS)


# ------------------------------------------------------------------------------------------ builders


def test_gateway_terminates_tls_on_443_for_the_services_published_here(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    gateway = objects(world, "e1", "Gateway")["istio-ingress/ingress-gateway"]
    assert gateway["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "fleet-mesh"}
    assert gateway["spec"] == {
        "selector": {"istio": "ingressgateway"},
        "servers": [{
            "port": {"number": 443, "name": "https-svc-test-example", "protocol": "HTTPS"},
            "hosts": ["istio-ingress/alpha.svc.test.example"],
            "tls": {"mode": "SIMPLE", "credentialName": "wildcard.svc.test.example",
                    "minProtocolVersion": "TLSV1_2"},
        }],
    }


def test_ingress_config_only_where_a_published_service_runs(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    assert ingress_objects(world, "e1") == ["Gateway/ingress-gateway", "VirtualService/alpha"]
    assert ingress_objects(world, "c1") == ingress_objects(world, "c2") == []
    world = world_of(tmp_path / "g", [GAMMA_INGRESS])
    for cluster in ("c1", "c2"):
        [server] = objects(world, cluster, "Gateway")["istio-ingress/ingress-gateway"]["spec"]["servers"]
        assert server["hosts"] == ["istio-ingress/gamma.svc.test.example"], "only what runs here"


def test_the_compiler_never_creates_the_ingress_namespace(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    assert "/istio-ingress" not in objects(world, "e1", "Namespace")


def test_one_server_per_domain_with_that_domains_certificate(tmp_path: Path) -> None:
    delta = (manifests.SERVICE_A.replace("alpha", "delta")
             .replace("calls:\n  - beta.svc.test.example\n  - host: gamma.svc.test.example\n    port: 9090\n", "")
             .replace("svc.test.example", "shop.test.example"))
    world = world_of(tmp_path, [
        ("fleet.yaml", "domains: [svc.test.example]", "domains: [svc.test.example, shop.test.example]"),
        ("services/delta.yaml", "", delta), (L, "alpha: [e1]", "alpha: [e1]\ndelta: [e1]"),
    ])
    servers = objects(world, "e1", "Gateway")["istio-ingress/ingress-gateway"]["spec"]["servers"]
    assert [(s["port"]["name"], s["tls"]["credentialName"], s["hosts"]) for s in servers] == [
        ("https-shop-test-example", "wildcard.shop.test.example", ["istio-ingress/delta.shop.test.example"]),
        ("https-svc-test-example", "wildcard.svc.test.example", ["istio-ingress/alpha.svc.test.example"]),
    ]


def test_route_binds_the_gateway_and_reaches_the_public_host(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    route = objects(world, "e1", "VirtualService")["istio-ingress/alpha"]
    assert route["metadata"]["labels"]["fleet-mesh.io/service"] == "alpha"
    assert route["metadata"]["annotations"] == {"fleet-mesh.io/source": "services/alpha.yaml"}
    assert route["spec"] == {
        "hosts": ["alpha.svc.test.example"],
        "gateways": ["istio-ingress/ingress-gateway"],
        "exportTo": ["."],
        "http": [{"route": [{"destination": {"host": "alpha.svc.test.example", "port": {"number": 8080}}}]}],
    }


def test_route_carries_the_services_traffic_policy_beside_its_mesh_route(tmp_path: Path) -> None:
    world = world_of(tmp_path, [BETA_INGRESS])
    ingress_route = objects(world, "c1", "VirtualService")["istio-ingress/beta"]["spec"]["http"]
    mesh_route = objects(world, "e1", "VirtualService")["mesh-imports/beta"]["spec"]
    assert ingress_route == mesh_route["http"] == [{
        "route": [{"destination": {"host": "beta.svc.test.example", "port": {"number": 8080}}}],
        "timeout": "2s", "retries": {"attempts": 2, "retryRemoteLocalities": True},
    }]
    assert mesh_route["exportTo"] == ["alpha"], "the mesh route stays with the callers"


def test_only_the_first_http_port_is_published(tmp_path: Path) -> None:
    http = "  - {name: http, number: 8080, protocol: HTTP}\n"
    world = world_of(tmp_path, [GAMMA_INGRESS, ("services/gamma.yaml", http,
                                                "  - {name: raw, number: 7000, protocol: TCP}\n" + http)])
    [route] = objects(world, "c1", "VirtualService")["istio-ingress/gamma"]["spec"]["http"]
    assert route["route"][0]["destination"]["port"] == {"number": 8080}
    rules = objects(world, "c1", "AuthorizationPolicy")["gamma/gamma-callers"]["spec"]["rules"]
    assert [r["to"] for r in rules if PRINCIPAL in r["from"][0]["source"]["principals"]] == \
        [[{"operation": {"ports": ["8080"]}}]]


def test_a_service_without_an_http_port_is_not_published(tmp_path: Path) -> None:
    world = world_of(tmp_path, [("services/alpha.yaml", "protocol: HTTP}", "protocol: TCP}")])
    assert ingress_objects(world, "e1") == []
    rules = objects(world, "e1", "AuthorizationPolicy").get("alpha/alpha-callers")
    assert rules is None, "nothing routes to it, so nothing is admitted"


def test_clusters_publishing_a_service_can_fail_over_to_each_other(tmp_path: Path) -> None:
    world = world_of(tmp_path, [BETA_INGRESS])
    for here, there in (("c1", "c2"), ("c2", "c1")):
        assert f"beta/beta.{there}" in objects(world, here, "WorkloadEntry")
        rule = objects(world, here, "DestinationRule")["beta/beta"]["spec"]
        assert INGRESS_NS in rule["exportTo"] and "istio-system" in rule["exportTo"]
        [server] = objects(world, here, "Gateway")["istio-system/cross-network-gateway"]["spec"]["servers"]
        assert "beta.svc.test.example" in server["hosts"]
    priority = objects(world, "c2", "DestinationRule")["beta/beta"]["spec"]["trafficPolicy"]["loadBalancer"]
    assert priority["localityLbSetting"]["failoverPriority"][0] == "fleet-mesh.io/role=primary"


ZONES = [("fleet.yaml", "    region: us-east1\n", "    region: us-east1\n    zones: [us-east1-b, us-east1-c]\n"),
         ("fleet.yaml", "    region: us-west1\n", "    region: us-west1\n    zones: [us-west1-a]\n")]


def test_weighted_service_keeps_its_split_at_the_ingress_and_fails_over(tmp_path: Path) -> None:
    split = (L, "gamma: [c1, c2]", "gamma: [{cluster: c1, weight: 90}, {cluster: c2, weight: 10}]")
    world = world_of(tmp_path, [GAMMA_INGRESS, *ZONES, split])
    [route] = objects(world, "c2", "VirtualService")["istio-ingress/gamma"]["spec"]["http"]
    assert route["route"] == [{"destination": {"host": "gamma.svc.test.example", "port": {"number": 8080}}}]
    outcome = Mesh(compile_fleet(world), facts_from_world(world)).resolve_ingress("c2", "gamma.svc.test.example")
    assert outcome.works and shares(outcome) == {"c1": 90, "c2": 10}
    assert shares(outcome, down={"c1"}) == {"c2": 100} and shares(outcome, down={"c2"}) == {"c1": 100}


def test_ingress_objects_match_istio_schemas(tmp_path: Path) -> None:
    world = world_of(tmp_path, [BETA_INGRESS, GAMMA_INGRESS])
    assert_valid(o for objects in compile_fleet(world).values() for o in objects
                 if o["metadata"].get("namespace") == INGRESS_NS)


# ---------------------------------------------------------------------------------------- simulation


def test_a_public_request_lands_on_local_pods_first_admitted_as_the_gateway(tmp_path: Path) -> None:
    world = world_of(tmp_path, [GAMMA_INGRESS])
    mesh = Mesh(compile_fleet(world), facts_from_world(world))
    outcome = mesh.resolve_ingress("c1", "gamma.svc.test.example")
    assert outcome.works, outcome
    assert [(e.cluster, e.priority) for e in outcome.endpoints] == [("c1", 0), ("c2", 1)]


def test_a_public_request_prefers_primaries_wherever_it_arrives(tmp_path: Path) -> None:
    world = world_of(tmp_path, [BETA_INGRESS])
    outcome = Mesh(compile_fleet(world), facts_from_world(world)).resolve_ingress("c2", "beta.svc.test.example")
    assert outcome.works, outcome
    assert [(e.cluster, e.priority) for e in outcome.endpoints] == [("c2", 1), ("c1", 0)]


def test_a_public_request_for_a_host_not_published_here_is_refused(tmp_path: Path) -> None:
    world = world_of(tmp_path, [GAMMA_INGRESS])
    mesh = Mesh(compile_fleet(world), facts_from_world(world))
    assert "serves no HTTPS" in (mesh.resolve_ingress("c1", "alpha.svc.test.example").refused or "")
    assert "serves no HTTPS" in (mesh.resolve_ingress("e1", "beta.svc.test.example").refused or "")
    assert mesh.resolve_ingress("e1", "alpha.svc.test.example").works


def test_a_teams_own_gateway_route_cannot_take_over_a_public_host(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    compiled = compile_fleet(world)
    rogue = copy.deepcopy(objects(world, "e1", "VirtualService")["istio-ingress/alpha"])
    rogue["metadata"]["namespace"] = "beta"
    rogue["spec"]["exportTo"] = ["*"]
    rogue["spec"]["http"][0]["route"][0]["destination"]["host"] = "beta.svc.test.example"
    compiled["e1"] = [rogue, *compiled["e1"]]
    outcome = Mesh(compiled, facts_from_world(world)).resolve_ingress("e1", "alpha.svc.test.example")
    assert outcome.works and outcome.clusters == {"e1"}, "the host binds only routes in the ingress namespace"


def test_without_the_gateway_bound_route_nothing_is_routed(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    compiled = compile_fleet(world)
    compiled["e1"] = [o for o in compiled["e1"] if o["metadata"].get("namespace") != INGRESS_NS
                      or o["kind"] != "VirtualService"]
    outcome = Mesh(compiled, facts_from_world(world)).resolve_ingress("e1", "alpha.svc.test.example")
    assert outcome.refused == "no VirtualService routes alpha.svc.test.example at e1's ingress gateway"


def test_example_stack_publishes_its_ingress_services_in_every_edge_cluster() -> None:
    world = load(stack_fixture.STACK).world
    mesh = Mesh(compile_fleet(world), facts_from_world(world))
    for name in ("web-frontend", "api-gateway"):
        service = world.services[name]
        for cluster in world.clusters:
            outcome = mesh.resolve_ingress(cluster, service.host)
            if cluster not in world.clusters_of(name):
                assert outcome.refused, (name, cluster)
                continue
            assert outcome.works, (name, cluster, outcome)
            assert outcome.clusters == set(world.clusters_of(name))
            assert [e.cluster for e in outcome.endpoints if e.priority == 0] == [cluster]


# ------------------------------------------------------------------------------------------- verify


def _edited(world: World, cluster: str, change: Any) -> list[str]:
    compiled = compile_fleet(world)
    compiled[cluster] = change(copy.deepcopy(compiled[cluster]))
    return verify(world, compiled)


def test_verify_accepts_exactly_the_ingress_config(tmp_path: Path) -> None:
    world = world_of(tmp_path, [BETA_INGRESS, GAMMA_INGRESS])
    assert verify(world, compile_fleet(world)) == []


def test_verify_flags_ingress_config_where_nothing_is_published(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    extra = [o for o in compile_cluster(world, "e1") if o["metadata"].get("namespace") == INGRESS_NS]
    problems = _edited(world, "c1", lambda objs: objs + extra)
    assert "c1: ingress Gateway ingress-gateway where no service is published" in problems
    assert "c1: gateway-bound VirtualService istio-ingress/alpha routes no service published here" in problems


def test_verify_flags_a_missing_route_or_host(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    routeless = _edited(world, "e1", lambda objs: [o for o in objs if o["metadata"]["name"] != "alpha"
                                                   or o["kind"] != "VirtualService"])
    assert routeless == ["e1: 0 ingress routes for alpha, expected 1"]

    def unscoped(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for o in objs:
            if o["kind"] == "Gateway" and o["metadata"]["namespace"] == INGRESS_NS:
                o["spec"]["servers"][0]["hosts"] = ["alpha.svc.test.example"]
        return objs
    assert any("bindable from other namespaces" in p for p in _edited(world, "e1", unscoped))


def test_verify_flags_an_ingress_that_could_not_fail_over(tmp_path: Path) -> None:
    world = world_of(tmp_path, [GAMMA_INGRESS, ("services/beta.yaml", "calls:\n  - gamma.svc.test.example\n", "")])
    problems = _edited(world, "c1", lambda objs: [o for o in objs if o["kind"] != "WorkloadEntry"])
    assert problems == ["c1: no remote endpoints for gamma: callers here could not fail over"]


def test_verify_flags_a_namespace_for_the_ingress_gateway(tmp_path: Path) -> None:
    world = world_of(tmp_path)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": INGRESS_NS, "labels": {}}}
    assert _edited(world, "e1", lambda objs: [namespace, *objs]) == \
        ["e1: namespaces ['istio-ingress'] missing or unneeded"]
