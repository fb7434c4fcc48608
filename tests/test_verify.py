"""The static verifier: silent on what the compiler emits, loud on each kind of broken output."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from mesh.compile import compile_fleet
from mesh.manifest import load
from mesh.verify import verify

import stack_fixture
from strategies import Manifest, manifests


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests())
def test_compiled_output_of_any_fleet_verifies(manifest: Manifest) -> None:
    world = manifest.world()
    assert verify(world, compile_fleet(world)) == []


def test_example_stack_verifies() -> None:
    world = load(stack_fixture.STACK).world
    assert verify(world, compile_fleet(world)) == []


def _first(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name))


Mutation = Callable[[dict[str, list[dict[str, Any]]]], None]

MUTATIONS: list[tuple[str, Mutation, str]] = [
    ("port-renamed", lambda c: _first(c["e1"], "ServiceEntry", "gamma")["spec"]["ports"][0].update(name="web"),
     "differs between clusters"),
    ("mesh-external", lambda c: _first(c["c1"], "ServiceEntry", "gamma")["spec"].update(location="MESH_EXTERNAL"),
     "is not MESH_INTERNAL"),
    ("not-exported-to-gateway", lambda c: _first(c["c1"], "ServiceEntry", "gamma")["spec"]["exportTo"]
     .remove("istio-system"), "is not exported to ['istio-system']"),
    ("gateway-host-dropped", lambda c: _first(c["c1"], "Gateway")["spec"]["servers"][0]["hosts"].pop(),
     "east-west gateway hosts"),
    ("endpoint-wrong-port", lambda c: _first(c["c1"], "WorkloadEntry")["spec"]["ports"].update(http=8080),
     "does not map every port to 15443"),
    ("endpoint-own-network", lambda c: _first(c["c1"], "WorkloadEntry")["spec"].update(network="c1"),
     "not another cluster's"),
    ("endpoint-hostname", lambda c: _first(c["c1"], "WorkloadEntry")["spec"].update(address="gw.example"),
     "not an IP"),
    ("ejection-10-percent", lambda c: _first(c["e1"], "DestinationRule")["spec"]["trafficPolicy"]
     ["outlierDetection"].update(maxEjectionPercent=10), "ejection must reach 100%"),
    ("sni-set", lambda c: _first(c["e1"], "DestinationRule")["spec"]["trafficPolicy"]["tls"].update(sni="x"),
     "without sni"),
    ("unneeded-entry", lambda c: c["c1"].append(copy.deepcopy(_first(c["e1"], "ServiceEntry", "alpha"))),
     "ServiceEntries missing or unneeded"),
    ("namespace-missing", lambda c: c["e1"].remove(_first(c["e1"], "Namespace", "mesh-imports")),
     "in a namespace never created"),
    ("namespace-per-import", lambda c: c["e1"].append(copy.deepcopy(_first(c["c1"], "Namespace", "beta"))),
     "namespaces ['beta'] missing or unneeded"),
    ("imports-injected", lambda c: _first(c["e1"], "Namespace", "mesh-imports")["metadata"]["labels"]
     .update({"istio-injection": "enabled"}), "labelled for injection exactly where workloads run"),
    ("import-in-service-namespace", lambda c: _first(c["e1"], "DestinationRule", "beta")["metadata"]
     .update(namespace="beta"), "DestinationRule beta/beta belongs in mesh-imports"),
    ("import-exported-widely", lambda c: _first(c["e1"], "ServiceEntry", "beta")["spec"].update(exportTo=["*"]),
     "not exactly its callers' namespaces ['alpha']"),
    ("sidecar-imports-from-service-namespace", lambda c: _first(c["e1"], "Sidecar")["spec"]["egress"][0]["hosts"]
     .append("beta/beta.svc.test.example"), "Sidecar alpha/default imports ['beta/beta.svc.test.example']"),
    ("second-sidecar", lambda c: c["e1"].append(copy.deepcopy(_first(c["e1"], "Sidecar"))), "has 2 Sidecars"),
]


@pytest.mark.parametrize(("mutate", "expected"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_verifier_catches_broken_output(tmp_path: Any, mutate: Mutation, expected: str) -> None:
    import manifests as small

    world = load(small.write(tmp_path / "stack", small.BASE)).world
    compiled = compile_fleet(world)
    mutate(compiled)
    problems = verify(world, compiled)
    assert any(expected in p for p in problems), problems
