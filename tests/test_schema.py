"""The published JSON Schema (`mesh schema KIND`) accepts exactly what the loader accepts per document.

Every file of stacks/prod and of the test manifests validates against it, short forms included; every
documented per-document mistake below is rejected by both the schema and the loader. (JSON has one
number type, so `8080.0` is an integer to JSON Schema; the validator here uses YAML's types, where it
is a float, as the loader does.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from mesh.manifest import schema

import manifests

ROOT = Path(__file__).resolve().parent.parent
PROD = ROOT / "stacks/prod"
MODELS: dict[str, Any] = {"service": schema.Service, "fleet": schema.Fleet, "locations": schema.LocationsFile,
                          "bundle": schema.Bundle}
# YAML's types: an integer is an int (not a bool, not 8080.0).
_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPES)


def published(kind: str) -> Any:
    return Validator(schema.json_schema(MODELS[kind]))


def loader_accepts(kind: str, document: Any) -> bool:
    try:
        TypeAdapter(MODELS[kind]).validate_python(document, **schema.VALIDATE)
    except ValidationError:
        return False
    return True


def _prod_documents() -> list[tuple[str, str, Any]]:
    out = [("fleet", "fleet.yaml", yaml.safe_load((PROD / "fleet.yaml").read_text())),
           ("locations", "locations.yaml", yaml.safe_load((PROD / "locations.yaml").read_text()))]
    for path in sorted((PROD / "services").glob("*.yaml")):
        out += [("service", path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    for name, text in manifests.BASE.items():
        kind = "fleet" if name == "fleet.yaml" else "locations" if name == "locations.yaml" else "service"
        out.append((kind, f"tests/manifests.py:{name}", yaml.safe_load(text)))
    return out


@pytest.mark.parametrize(("kind", "document"), [(k, d) for k, _, d in _prod_documents()],
                         ids=[n for _, n, _ in _prod_documents()])
def test_every_example_and_fixture_file_validates_against_the_schema(kind: str, document: Any) -> None:
    errors = [e.message for e in published(kind).iter_errors(document)]
    assert errors == []
    assert loader_accepts(kind, document)


def test_a_bundle_of_the_fixture_files_validates() -> None:
    bundle = {**yaml.safe_load(manifests.FLEET), "locations": yaml.safe_load(manifests.LOCATIONS),
              "services": [yaml.safe_load(manifests.BASE[f"services/{n}.yaml"]) for n in ("alpha", "beta", "gamma")]}
    assert list(published("bundle").iter_errors(bundle)) == []
    assert loader_accepts("bundle", bundle)


SERVICE = yaml.safe_load(manifests.SERVICE_B)
FLEET = yaml.safe_load(manifests.FLEET)
CLUSTER = FLEET["clusters"][0]


def service(**changes: Any) -> dict[str, Any]:
    return {**SERVICE, **changes}


def cluster(**changes: Any) -> dict[str, Any]:
    return {**FLEET, "clusters": [{**CLUSTER, **changes}]}


RANGES = {"nodes": "10.0.0.0/20", "pods": "10.64.0.0/14", "services": "10.200.0.0/20",
          "controlPlane": "172.16.0.0/28"}

# Forms both must accept (short forms and edges).
ACCEPTED = [
    ("service", "call-as-host", service(calls=["gamma.svc.test.example"])),
    ("service", "call-with-port", service(calls=[{"host": "gamma.svc.test.example", "port": 9090}])),
    ("service", "retries-as-number", service(traffic={"retries": 2})),
    ("service", "retries-full", service(traffic={"retries": {"attempts": 2, "retryOn": "5xx,503, reset"}})),
    ("service", "port-below-istio", service(ports=[{"name": "a", "number": 14999, "protocol": "TCP"}])),
    ("service", "port-above-istio", service(ports=[{"name": "a", "number": 15091, "protocol": "TCP"}])),
    ("service", "one-ms", service(traffic={"timeout": "1ms"})),
    ("service", "a-millisecond-in-seconds", service(traffic={"timeout": "0.001s"})),
    ("locations", "plain-cluster-name", {"beta": ["c1"]}),
    ("locations", "role", {"beta": [{"cluster": "c1", "role": "primary"}]}),
    ("fleet", "node-pools", cluster(nodePools=[{"name": "p", "machineType": "e2-standard-4", "minNodes": 1,
                                                "maxNodes": 3}])),
    ("fleet", "ip-ranges", cluster(ipRanges=RANGES)),
]

# Per-document mistakes both must reject.
REJECTED = [
    ("service", "quoted-port", service(ports=[{"name": "a", "number": "8080", "protocol": "TCP"}])),
    ("service", "float-port", service(ports=[{"name": "a", "number": 8080.5, "protocol": "TCP"}])),
    ("service", "istio-port-15002", service(ports=[{"name": "a", "number": 15002, "protocol": "TCP"}])),
    ("service", "istio-port-15090", service(ports=[{"name": "a", "number": 15090, "protocol": "TCP"}])),
    ("service", "string-ingress", service(ingress="off")),
    ("service", "number-ingress", service(ingress=0)),
    ("service", "snake-case", {**{k: v for k, v in SERVICE.items() if k != "serviceAccount"},
                               "service_account": "beta"}),
    ("service", "unknown-field", service(timeout="2s")),
    ("service", "no-ports", service(ports=[])),
    ("service", "bad-protocol", service(ports=[{"name": "a", "number": 80, "protocol": "grpc"}])),
    ("service", "call-bad-host", service(calls=["Not_A_Host"])),
    ("service", "call-as-number", service(calls=[8080])),
    ("service", "retries-quoted", service(traffic={"retries": "2"})),
    ("service", "retries-too-many", service(traffic={"retries": 11})),
    ("service", "retry-on-999", service(traffic={"retries": {"attempts": 1, "retryOn": "999"}})),
    ("service", "retry-on-unknown", service(traffic={"retries": {"attempts": 1, "retryOn": "5xx,bogus"}})),
    ("service", "zero-timeout", service(traffic={"timeout": "0s"})),
    ("service", "sub-ms-timeout", service(traffic={"timeout": "0.5ms"})),
    ("service", "sub-ms-in-seconds", service(traffic={"timeout": "0.0001s"})),
    ("service", "bad-duration", service(traffic={"timeout": "2 seconds"})),
    ("service", "bad-label", service(selector={"app": "bad value!"})),
    ("locations", "number-cluster", {"beta": [5]}),
    ("locations", "bad-role", {"beta": [{"cluster": "c1", "role": "leader"}]}),
    ("locations", "role-and-weight", {"beta": [{"cluster": "c1", "role": "primary", "weight": 100}]}),
    ("locations", "weight-over-100", {"beta": [{"cluster": "c1", "weight": 101}]}),
    ("locations", "bad-service-name", {"Beta": ["c1"]}),
    ("fleet", "no-node-pools", cluster(nodePools=[])),
    ("fleet", "size-and-pools", cluster(size="small", nodePools=[{"name": "p", "machineType": "e2", "minNodes": 1,
                                                                  "maxNodes": 1}])),
    ("fleet", "cidr-without-prefix", cluster(ipRanges={**RANGES, "nodes": "10.0.0.0"})),
    ("fleet", "cidr-bad-prefix", cluster(ipRanges={**RANGES, "nodes": "10.0.0.0/33"})),
    ("fleet", "bad-ip", cluster(eastWest={"internal": "10.0.0.300"})),
    ("fleet", "snake-mesh-id", {**FLEET, "mesh_id": "x"}),
    ("fleet", "no-domains", {**FLEET, "domains": []}),
    ("bundle", "fleet-alone", FLEET),
]


@pytest.mark.parametrize(("kind", "document"), [c[::2] for c in ACCEPTED], ids=[c[1] for c in ACCEPTED])
def test_short_forms_are_accepted_by_both(kind: str, document: Any) -> None:
    assert [e.message for e in published(kind).iter_errors(document)] == []
    assert loader_accepts(kind, document)


@pytest.mark.parametrize(("kind", "document"), [c[::2] for c in REJECTED], ids=[c[1] for c in REJECTED])
def test_every_documented_mistake_is_rejected_by_both(kind: str, document: Any) -> None:
    assert list(published(kind).iter_errors(document)), "the schema accepts it"
    assert not loader_accepts(kind, document), "the loader accepts it"


def test_the_one_check_json_schema_cannot_state_is_a_cidr_with_host_bits() -> None:
    """Documented in schema.py: host bits are checked by the loader only."""
    document = cluster(ipRanges={**RANGES, "nodes": "10.0.0.1/20"})
    assert list(published("fleet").iter_errors(document)) == []
    assert not loader_accepts("fleet", document)


def test_mesh_schema_prints_what_the_models_publish() -> None:
    from mesh import cli

    for kind in MODELS:
        assert cli.main(["schema", kind]) == 0
