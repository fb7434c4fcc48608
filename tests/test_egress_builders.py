"""One behaviour per test for the egress builders, on the manifest of tests/test_egress_errors.py.

beta (core; c1 primary, c2 standby) calls `pay` (api.pay.example.net:443, through the egress
gateway) and `db` (a private database on 172.20.0.0/24); every workload reaches `apis`
(*.googleapis.com on Private Google Access). alpha (edge, e1) calls no external itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_egress_errors import BASE, F

from mesh import graph
from mesh.compile import compile_cluster, compile_fleet
from mesh.diff import diff_worlds
from mesh.manifest import load
from mesh.model import World
from mesh.simulate import Mesh, Workload, facts_from_world
from mesh.verify import verify

import manifests

GATEWAY_HOST = "istio-egressgateway.istio-egress.svc.cluster.local"
SENDGRID = """\
  - name: mail
    hosts: [api.mail.example.org]
    ports: [{number: 80, protocol: HTTP}]
    tiers: [core]
    originateTls: true
"""


def world_of(tmp_path: Path, edits: list[tuple[str, str, str]] | None = None) -> World:
    return load(manifests.write(tmp_path / "stack", manifests.edited(edits or [], BASE))).world


def objects(world: World, cluster: str, kind: str) -> dict[str, dict[str, Any]]:
    return {f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}": o
            for o in compile_cluster(world, cluster) if o["kind"] == kind}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return world_of(tmp_path)


def test_external_service_entries_only_where_a_caller_runs_visible_to_callers_only(world: World) -> None:
    for cluster in ("c1", "c2"):
        entries = objects(world, cluster, "ServiceEntry")
        pay = entries["mesh-external/pay"]["spec"]
        assert pay == {"hosts": ["api.pay.example.net"], "location": "MESH_EXTERNAL", "resolution": "DNS",
                       "ports": [{"number": 443, "name": "tls-443", "protocol": "TLS"}],
                       "exportTo": ["beta", "istio-egress"]}
        db = entries["mesh-external/db"]["spec"]
        assert (db["resolution"], db["addresses"], db["exportTo"]) == ("NONE", ["172.20.0.0/24"], ["beta"])
        assert entries["mesh-external/apis"]["spec"]["exportTo"] == ["*"]
    assert sorted(k for k in objects(world, "e1", "ServiceEntry") if k.startswith("mesh-external/")) == [
        "mesh-external/apis"]


def test_the_config_namespace_exists_where_externals_are_configured(world: World) -> None:
    for cluster in world.clusters:
        assert "/mesh-external" in objects(world, cluster, "Namespace")


def test_sidecars_import_exactly_the_called_externals_and_the_gateway_where_used(world: World) -> None:
    beta = objects(world, "c1", "Sidecar")["beta/default"]["spec"]["egress"][0]["hosts"]
    assert {h for h in beta if h.startswith(("mesh-external/", "istio-egress/"))} == {
        "mesh-external/api.pay.example.net", "mesh-external/db.private.example", "mesh-external/*.googleapis.com",
        f"istio-egress/{GATEWAY_HOST}"}
    gamma = objects(world, "c1", "Sidecar")["gamma/default"]["spec"]["egress"][0]["hosts"]
    assert {h for h in gamma if h.startswith(("mesh-external/", "istio-egress/"))} == {
        "mesh-external/*.googleapis.com"}


def test_the_egress_gateway_config_follows_istios_mutual_tls_pattern(world: World) -> None:
    gateway = objects(world, "c1", "Gateway")["istio-egress/egress-gateway"]
    assert gateway["spec"] == {"selector": {"istio": "egressgateway"}, "servers": [{
        "port": {"number": 443, "name": "tls-pay", "protocol": "TLS"},
        "hosts": ["mesh-external/api.pay.example.net"], "tls": {"mode": "ISTIO_MUTUAL"}}]}
    rule = objects(world, "c1", "DestinationRule")["istio-egress/egress-gateway"]["spec"]
    mutual = {"mode": "ISTIO_MUTUAL", "sni": "api.pay.example.net"}
    assert rule == {"host": GATEWAY_HOST, "exportTo": ["beta"], "subsets": [
        {"name": "pay", "trafficPolicy": {"portLevelSettings": [{"port": {"number": 443}, "tls": mutual}]}}]}
    route = objects(world, "c1", "VirtualService")["mesh-external/pay"]["spec"]
    assert route["gateways"] == ["mesh", "istio-egress/egress-gateway"]
    assert route["tls"] == [{"match": [{"gateways": ["mesh"], "port": 443, "sniHosts": ["api.pay.example.net"]}],
                             "route": [{"destination": {"host": GATEWAY_HOST, "subset": "pay",
                                                        "port": {"number": 443}}}]}]
    assert route["tcp"] == [{"match": [{"gateways": ["istio-egress/egress-gateway"], "port": 443}],
                             "route": [{"destination": {"host": "api.pay.example.net", "port": {"number": 443}}}]}]


def test_the_egress_gateway_admits_exactly_the_local_callers_for_exactly_the_sni(world: World) -> None:
    policies = objects(world, "c1", "AuthorizationPolicy")
    assert policies["istio-egress/default-deny"]["spec"] == {}
    assert policies["istio-egress/pay-callers"]["spec"] == {
        "selector": {"matchLabels": {"istio": "egressgateway"}}, "action": "ALLOW",
        "rules": [{"from": [{"source": {"principals": ["test.example/ns/beta/sa/beta"]}}],
                   "to": [{"operation": {"ports": ["443"]}}],
                   "when": [{"key": "connection.sni", "values": ["api.pay.example.net"]}]}]}


def test_no_egress_gateway_config_where_no_caller_of_a_gateway_destination_runs(world: World) -> None:
    for kind in ("Gateway", "DestinationRule", "VirtualService", "AuthorizationPolicy"):
        assert not [k for k in objects(world, "e1", kind) if k.startswith(("istio-egress/", "mesh-external/"))], kind


def test_tls_is_originated_by_the_sidecar_where_the_destination_says_so(tmp_path: Path) -> None:
    world = world_of(tmp_path, [(F, "  - name: apis\n", SENDGRID + "  - name: apis\n"),
                                ("services/gamma.yaml", "", "calls: [api.mail.example.org]\n")])
    entry = objects(world, "c1", "ServiceEntry")["mesh-external/mail"]["spec"]
    assert entry["ports"] == [{"number": 80, "name": "http-80", "protocol": "HTTP", "targetPort": 443}]
    rule = objects(world, "c1", "DestinationRule")["mesh-external/mail"]["spec"]
    assert rule == {"host": "api.mail.example.org", "exportTo": ["gamma"], "trafficPolicy": {"portLevelSettings": [
        {"port": {"number": 80}, "tls": {"mode": "SIMPLE", "sni": "api.mail.example.org"}}]}}
    gamma = world.services["gamma"]
    mesh = Mesh(compile_fleet(world), facts_from_world(world))
    outcome = mesh.resolve_external(Workload("c1", "gamma", gamma.workload_labels, "gamma"), "api.mail.example.org", 80)
    assert outcome.works and outcome.tls_originated and outcome.port == 443 and not outcome.via_gateway


def test_http_through_the_gateway_is_originated_at_the_gateway(tmp_path: Path) -> None:
    world = world_of(tmp_path, [(F, "  - name: apis\n", SENDGRID.replace("    originateTls", "    egressGateway: true\n"
                                                                             "    originateTls") + "  - name: apis\n"),
                                ("services/gamma.yaml", "", "calls: [api.mail.example.org]\n")])
    rule = objects(world, "c1", "DestinationRule")["mesh-external/mail"]["spec"]
    assert rule["exportTo"] == ["istio-egress"], "only the gateway originates"
    [server] = [s for s in objects(world, "c1", "Gateway")["istio-egress/egress-gateway"]["spec"]["servers"]
                if s["port"]["name"] == "http-mail"]
    assert server["port"] == {"number": 80, "name": "http-mail", "protocol": "HTTPS"}
    gamma = world.services["gamma"]
    mesh = Mesh(compile_fleet(world), facts_from_world(world))
    outcome = mesh.resolve_external(Workload("c1", "gamma", gamma.workload_labels, "gamma"), "api.mail.example.org", 80)
    assert outcome.works and outcome.via_gateway and outcome.tls_originated
    assert verify(world, compile_fleet(world)) == []


def test_externals_nobody_calls_change_nothing(tmp_path: Path) -> None:
    """Declared but uncalled destinations leave every object byte-identical to a fleet without any."""
    unused = manifests.FLEET + (
        "externals:\n  - name: pay\n    hosts: [api.pay.example.net]\n    ports: [{number: 443, protocol: TLS}]\n"
        "    tiers: [core]\n    egressGateway: true\n")
    plain = load(manifests.write(tmp_path / "plain", manifests.BASE)).world
    declared = load(manifests.write(tmp_path / "declared", {**manifests.BASE, "fleet.yaml": unused})).world
    assert compile_fleet(declared) == compile_fleet(plain)


def test_verify_catches_an_external_opened_too_wide_or_left_behind(world: World) -> None:
    compiled = compile_fleet(world)
    entry = next(o for o in compiled["c1"] if (o["kind"], o["metadata"]["name"]) == ("ServiceEntry", "pay"))
    entry["spec"]["exportTo"].append("gamma")
    compiled["e1"].append(entry)
    problems = verify(world, compiled)
    assert any("c1: external ServiceEntry pay is exported to" in p for p in problems)
    assert any("e1: external ServiceEntries ['pay'] missing or unneeded" in p for p in problems)


def test_diff_says_who_may_now_call_what_outside_the_mesh(tmp_path: Path) -> None:
    before = world_of(tmp_path / "before", [("services/beta.yaml", "  - {host: api.pay.example.net, port: 443}\n", "")])
    after = world_of(tmp_path / "after")
    intent = diff_worlds(before, after).intent
    assert "beta may now call api.pay.example.net:443 (external, via the egress gateway)" in intent
    assert "beta may no longer call api.pay.example.net:443 (external, via the egress gateway)" in \
        diff_worlds(after, before).intent
    assert "c1 now needs an egress gateway (istio-egress/istio-egressgateway)" in intent


def test_the_graph_draws_external_destinations(world: World) -> None:
    dot = graph.as_dot(world)
    assert '"c1/beta" -> "external/pay" [style=dotted, color=blue];' in dot
    assert '"external/apis" [label="apis\\n*.googleapis.com:443\\nevery workload", shape=component];' in dot
    data = graph.as_data(world)
    assert [e["name"] for e in data["externals"]] == ["apis", "db", "pay"]
    assert {(c["from"], c["to"]) for c in data["externalCalls"]} == {("beta", "db"), ("beta", "pay")}
