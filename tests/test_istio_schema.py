"""The Istio schema helper can fail: each kind of mistake is caught, on each backend that can catch it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

import istio_schema

CRDS_PRESENT = istio_schema._crd_path() is not None
requires_crds = pytest.mark.skipif(not CRDS_PRESENT, reason="Istio CRD file absent; set FLEET_MESH_ISTIO_CRDS")

NET, SEC = "networking.istio.io/v1", "security.istio.io/v1"
SAN = "spiffe://td.example/ns/pay/sa/pay"

VALID: dict[str, dict[str, Any]] = {
    "ServiceEntry": {
        "apiVersion": NET, "kind": "ServiceEntry",
        "metadata": {"name": "pay", "namespace": "pay", "labels": {"fleet-mesh.io/service": "pay"}},
        "spec": {
            "hosts": ["pay.mesh.example.com"], "location": "MESH_INTERNAL", "resolution": "STATIC",
            "ports": [{"number": 8080, "name": "http-8080", "protocol": "HTTP", "targetPort": 8080}],
            "workloadSelector": {"labels": {"app": "pay"}}, "subjectAltNames": [SAN],
            "exportTo": ["istio-system", "pay", "checkout"],
        },
    },
    "WorkloadEntry": {
        "apiVersion": NET, "kind": "WorkloadEntry", "metadata": {"name": "pay-c2", "namespace": "pay"},
        "spec": {
            "address": "203.0.113.20", "ports": {"http-8080": 15443}, "network": "n2",
            "labels": {"app": "pay", "security.istio.io/tlsMode": "istio"},
            "locality": "europe-west1/europe-west1-b",
        },
    },
    "DestinationRule": {
        "apiVersion": NET, "kind": "DestinationRule", "metadata": {"name": "pay", "namespace": "pay"},
        "spec": {
            "host": "pay.mesh.example.com", "exportTo": ["*"],
            "trafficPolicy": {
                "tls": {"mode": "ISTIO_MUTUAL", "subjectAltNames": [SAN]},
                "loadBalancer": {
                    "simple": "LEAST_REQUEST",
                    "localityLbSetting": {"enabled": True, "failoverPriority": ["topology.kubernetes.io/region"]},
                },
                "outlierDetection": {
                    "consecutiveGatewayErrors": 5, "consecutive5xxErrors": 0, "interval": "5s",
                    "baseEjectionTime": "30s", "maxEjectionPercent": 100, "minHealthPercent": 0,
                },
            },
        },
    },
    "VirtualService": {
        "apiVersion": NET, "kind": "VirtualService", "metadata": {"name": "pay", "namespace": "pay"},
        "spec": {
            "hosts": ["pay.mesh.example.com"], "exportTo": ["*"],
            "http": [{
                "route": [{"destination": {"host": "pay.mesh.example.com", "port": {"number": 8080}}}],
                "timeout": "2s", "retries": {"attempts": 2, "perTryTimeout": "1s", "retryOn": "connect-failure"},
            }],
        },
    },
    "Sidecar": {
        "apiVersion": NET, "kind": "Sidecar", "metadata": {"name": "default", "namespace": "checkout"},
        "spec": {
            "egress": [{"hosts": ["./*", "istio-system/*", "pay/pay.mesh.example.com"]}],
            "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
        },
    },
    "AuthorizationPolicy": {
        "apiVersion": SEC, "kind": "AuthorizationPolicy", "metadata": {"name": "pay-callers", "namespace": "pay"},
        "spec": {
            "selector": {"matchLabels": {"app": "pay"}}, "action": "ALLOW",
            "rules": [{
                "from": [{"source": {"principals": ["td.example/ns/checkout/sa/checkout"]}}],
                "to": [{"operation": {"ports": ["8080"]}}],
            }],
        },
    },
    "PeerAuthentication": {
        "apiVersion": SEC, "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "istio-system"},
        "spec": {"mtls": {"mode": "STRICT"}},
    },
    "Gateway": {
        "apiVersion": NET, "kind": "Gateway",
        "metadata": {"name": "cross-network-gateway", "namespace": "istio-system"},
        "spec": {
            "selector": {"istio": "eastwestgateway"},
            "servers": [{
                "port": {"number": 15443, "name": "tls", "protocol": "TLS"},
                "tls": {"mode": "AUTO_PASSTHROUGH"}, "hosts": ["*.mesh.example.com"],
            }],
        },
    },
    "Namespace": {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "pay", "labels": {"istio-injection": "enabled"}},
    },
}


def variant(kind: str, path: str, value: Any) -> dict[str, Any]:
    """A copy of VALID[kind] with the dotted `path` (list indexes as numbers) set to `value`."""
    obj = copy.deepcopy(VALID[kind])
    *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
    target: Any = obj
    for part in parents:
        target = target[part]
    target[last] = value
    return obj


def problems_at(obj: dict[str, Any], path: str) -> list[str]:
    """The problems reported exactly at `path` (e.g. '$.spec.resolution')."""
    return [problem for problem in istio_schema.validate_object(obj) if f": {path}: " in problem]


@pytest.fixture(params=["crd", "cloudcoil"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> str:
    if request.param == "crd":
        if not CRDS_PRESENT:
            pytest.skip("Istio CRD file absent; set FLEET_MESH_ISTIO_CRDS")
    else:
        monkeypatch.setenv(istio_schema.CRDS_ENV, str(tmp_path / "absent.yaml"))
        with pytest.warns(UserWarning, match=istio_schema.CRDS_ENV):
            assert istio_schema.schema_source().startswith("cloudcoil-models-istio 1.24")
    return request.param


# ------------------------------------------------------------------------------------------ both backends


def test_schema_source_names_the_backend(backend: str) -> None:
    source = istio_schema.schema_source()
    assert source.startswith("crd:" if backend == "crd" else "cloudcoil-models-istio ")
    if backend == "crd":
        assert source.endswith("crd-all.gen.yaml")


@pytest.mark.parametrize("kind", VALID)
def test_valid_objects_pass(backend: str, kind: str) -> None:
    assert istio_schema.validate_object(VALID[kind]) == []


def test_unknown_fields_fail_at_any_depth(backend: str) -> None:
    obj = variant("ServiceEntry", "spec.bogus", 1)
    obj["spec"]["ports"][0]["targetport"] = 8080  # a typo of targetPort
    assert problems_at(obj, "$.spec.bogus") == ["ServiceEntry/pay/pay: $.spec.bogus: unknown field 'bogus'"]
    assert problems_at(obj, "$.spec.ports[0].targetport")


def test_wrong_type_fails(backend: str) -> None:
    obj = variant("ServiceEntry", "spec.ports.0.number", "8080")
    assert problems_at(obj, "$.spec.ports[0].number")


def test_float_is_not_an_integer(backend: str) -> None:
    assert problems_at(variant("DestinationRule", "spec.trafficPolicy.outlierDetection.maxEjectionPercent", 100.0),
                       "$.spec.trafficPolicy.outlierDetection.maxEjectionPercent")


def test_enum_violation_fails(backend: str) -> None:
    found = problems_at(variant("ServiceEntry", "spec.resolution", "BOGUS"), "$.spec.resolution")
    assert found and "BOGUS" in found[0]


def test_missing_required_field_fails(backend: str) -> None:
    obj = copy.deepcopy(VALID["ServiceEntry"])
    del obj["spec"]["hosts"]
    assert any("hosts" in problem for problem in istio_schema.validate_object(obj))
    del obj["spec"]
    assert istio_schema.validate_object(obj) == ["ServiceEntry/pay/pay: $: 'spec' is a required property"]


def test_metadata_is_checked(backend: str) -> None:
    obj = variant("ServiceEntry", "metadata", {"name": "Bad_Name", "labels": {"app": 1, "k": "a/b"}, "nme": "x"})
    problems = istio_schema.validate_object(obj)
    assert [p.split(": ")[1] for p in problems] == [
        "$.metadata.nme", "$.metadata.name", "$.metadata.namespace", "$.metadata.labels.app", "$.metadata.labels.k",
    ]


@pytest.mark.parametrize("api_version, kind", [(NET, "EnvoyFilter"), (NET, "ServiceEntryy"), ("v1", "Service")])
def test_kinds_without_a_schema_fail(backend: str, api_version: str, kind: str) -> None:
    obj = {**VALID["ServiceEntry"], "apiVersion": api_version, "kind": kind}
    [problem] = istio_schema.validate_object(obj)
    assert ": $.apiVersion: no schema for kind" in problem


def test_status_is_not_generated(backend: str) -> None:
    assert problems_at({**VALID["PeerAuthentication"], "status": {}}, "$.status")


@pytest.mark.parametrize("metadata, path", [
    ({"name": "Pay"}, "$.metadata.name"),
    ({"name": "a.b"}, "$.metadata.name"),  # a namespace name is a label, not a subdomain
    ({"name": "pay", "namespace": "pay"}, "$.metadata.namespace"),
    ({"name": "pay", "labels": {"istio-injection": True}}, "$.metadata.labels['istio-injection']"),
])
def test_namespaces_are_checked_without_a_crd(metadata: dict[str, Any], path: str) -> None:
    assert problems_at({**VALID["Namespace"], "metadata": metadata}, path)


def test_assert_valid_lists_every_problem(backend: str) -> None:
    istio_schema.assert_valid(VALID.values())
    bad = [variant("ServiceEntry", "spec.resolution", "BOGUS"), variant("Sidecar", "spec.egres", [])]
    with pytest.raises(AssertionError) as raised:
        istio_schema.assert_valid(bad)
    assert "2 Istio schema problem(s)" in str(raised.value)
    assert "$.spec.resolution" in str(raised.value) and "$.spec.egres" in str(raised.value)


# ------------------------------------------------------------------------------- CRD only: CEL and more


@requires_crds
@pytest.mark.parametrize("kind, path, value, at, message", [
    ("ServiceEntry", "spec.endpoints", [{"address": "203.0.113.20"}], "$.spec",
     "only one of WorkloadSelector or Endpoints can be set"),
    ("WorkloadEntry", "spec.ports", {"Bad_Name": 15443}, "$.spec.ports", "port name must be valid"),
    ("DestinationRule", "spec.trafficPolicy.outlierDetection.interval", "0s",
     "$.spec.trafficPolicy.outlierDetection.interval", "must be a valid duration greater than 1ms"),
    ("ServiceEntry", "spec.ports.0.number", 0, "$.spec.ports[0].number", "port must be between 1-65535"),
    ("WorkloadEntry", "spec.ports", {"http-8080": 70000}, "$.spec.ports['http-8080']",
     "port must be between 1-65535"),
    ("ServiceEntry", "spec.hosts", ["*"], "$.spec.hosts[0]", "hostname cannot be wildcard"),
    ("AuthorizationPolicy", "spec.targetRefs", [{"kind": "Service", "name": "pay"}], "$.spec",
     "only one of targetRefs or selector can be set"),
    ("Sidecar", "spec.workloadSelector", {"labels": {"app": "*"}}, "$.spec.workloadSelector.labels.app",
     "wildcard is not supported in selector"),
])
def test_cel_rule_violations_fail(kind: str, path: str, value: Any, at: str, message: str) -> None:
    assert problems_at(variant(kind, path, value), at) == [f"{istio_schema._label(VALID[kind])}: {at}: {message}"]


@requires_crds
def test_unevaluable_rule_input_is_a_problem_not_a_pass() -> None:
    # Go durations have no days; the API server fails the rule, so must we.
    [problem] = problems_at(variant("DestinationRule", "spec.trafficPolicy.outlierDetection.interval", "1d"),
                            "$.spec.trafficPolicy.outlierDetection.interval")
    assert "could not be evaluated: invalid duration '1d'" in problem


@requires_crds
def test_port_names_and_numbers_are_unique() -> None:
    obj = copy.deepcopy(VALID["ServiceEntry"])
    obj["spec"]["ports"].append({"number": 8080, "name": "http-8080"})
    assert problems_at(obj, "$.spec.ports[1]")  # list-map keyed by name
    assert problems_at(obj, "$.spec.ports") == [
        "ServiceEntry/pay/pay: $.spec.ports: port number cannot be duplicated"
    ]


@requires_crds
def test_one_of_exclusive_fields_fail() -> None:
    obj = variant("DestinationRule", "spec.trafficPolicy.loadBalancer.consistentHash", {"useSourceIp": True})
    [problem] = problems_at(obj, "$.spec.trafficPolicy.loadBalancer")
    assert problem.endswith(
        "at most one of simple, consistentHash may be set; found simple, consistentHash"
    )


@requires_crds
def test_nullable_and_formats_follow_kubernetes() -> None:
    outlier = "spec.trafficPolicy.outlierDetection"
    # consecutive5xxErrors is a nullable uint32 wrapper; maxEjectionPercent a plain int32.
    assert istio_schema.validate_object(variant("DestinationRule", f"{outlier}.consecutive5xxErrors", None)) == []
    for bad in (None, 2**31):
        obj = variant("DestinationRule", f"{outlier}.maxEjectionPercent", bad)
        assert problems_at(obj, f"$.{outlier}.maxEjectionPercent")


@requires_crds
def test_every_cel_rule_in_the_crds_is_evaluated_or_allow_listed() -> None:
    path = str(istio_schema._crd_path())
    in_file = {rule["rule"] for doc in istio_schema._crd_documents(path) for rule in _rules_in(doc)}
    evaluated = {rule.rule for kind in istio_schema._crd_index(path).values() for rule in _cel_rules(kind.cel)}
    assert in_file - set(istio_schema.UNEVALUATED_RULES) == evaluated
    assert set(istio_schema.UNEVALUATED_RULES) <= in_file  # no stale allow-list entries


def _rules_in(node: Any) -> Iterator[dict[str, str]]:
    if isinstance(node, dict):
        yield from node.get("x-kubernetes-validations", ())
        for child in node.values():
            yield from _rules_in(child)
    elif isinstance(node, list):
        for child in node:
            yield from _rules_in(child)


def _cel_rules(node: Any) -> Iterator[Any]:
    if node is not None:
        yield from node.rules
        for child in (*node.properties.values(), node.items, node.values):
            yield from _cel_rules(child)


# ------------------------------------------------------------------------------------ CEL machinery itself


ONE_OF_TWO = "(has(self.workloadSelector) ? 1 : 0) + (has(self.endpoints) ? 1 : 0) <= 1"
NONE_HAS_NO_ENDPOINTS = '((has(self.resolution) ? self.resolution : "NONE") == "NONE") ? !has(self.endpoints) : true'


@pytest.mark.parametrize("rule, value", [
    (ONE_OF_TWO, {"workloadSelector": {}, "endpoints": []}),
    (ONE_OF_TWO, {"workloadSelector": {"labels": {}}, "hosts": ["a"]}),
    (NONE_HAS_NO_ENDPOINTS, {"resolution": "DNS", "endpoints": [{}], "hosts": ["a"]}),
    (NONE_HAS_NO_ENDPOINTS, {"endpoints": [{}]}),
    ('self.all(key, !key.contains("*"))', {"a*": "x"}),
    ('self.all(key, !key.contains("*"))', {"app": "*"}),
    ("self.all(l1, self.exists_one(l2, l1.number == l2.number))", [{"number": 1}, {"number": 1}]),
    ("has(self.portLevelMtls) ? (((has(self.selector) && has(self.selector.matchLabels)) ? "
     "self.selector.matchLabels : {}).size() > 0) : true",
     {"portLevelMtls": {"80": {}}, "selector": {"matchLabels": {}}}),
    ("self.x == 1", {"y": 1}),  # an evaluation error survives projection
    ('self.all(k, k != "x") && self.y == 1', {"a": 1, "y": 2}),  # keys and a field
    ('self.all(k, self[k] != "*")', {"a": "*"}),  # values read by index: no projection
])
def test_memoised_outcomes_match_plain_evaluation(rule: str, value: Any) -> None:
    assert istio_schema._rule_status(rule, value) == istio_schema._evaluate(rule, value)


@pytest.mark.parametrize("text, valid", [
    ("5s", True), ("1m30s", True), ("1.5h", True), ("300ms", True), ("2µs", True), ("0", True), (".5s", True),
    ("1d", False), ("5", False), ("", False), ("s", False), ("5 s", False), ("1.5.5s", False),
])
def test_durations_follow_go(text: str, valid: bool) -> None:
    assert isinstance(istio_schema._duration(text), istio_schema.celtypes.DurationType) is valid


@pytest.mark.parametrize("text, scheme", [
    ("https://example.com/jwks", "https"), ("oci://ghcr.io/x:1", "oci"), ("/local/path", ""),
    ("HTTP://x", "http"), ("ghcr.io/x", None), ("http://x:port/", None), ("", None),
])
def test_url_scheme_approximates_go(text: str, scheme: str | None) -> None:
    assert istio_schema._request_uri_scheme(text) == scheme
