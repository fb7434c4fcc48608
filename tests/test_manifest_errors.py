"""Every validation rule, one case each: the exact `file:line: field` and the message a user reads.

Each case edits one small valid manifest (tests/manifests.py) and names the diagnostic it must
produce; line numbers refer to the edited files and were checked by reading them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.manifest import ManifestError, load

import manifests

A, B, C = "services/alpha.yaml", "services/beta.yaml", "services/gamma.yaml"
ZETA = ("name: zeta\nhost: zeta.svc.test.example\nnamespace: gamma\nserviceAccount: zeta\ntier: core\n"
        "ports:\n  - {name: http, number: 8080, protocol: HTTP}\n")
RANGES = ("    ipRanges: {nodes: 10.0.0.0/20, pods: 10.64.0.0/14, services: 10.200.0.0/20, "
          "controlPlane: 172.16.0.0/28}\n")
F, L = "fleet.yaml", "locations.yaml"

# (id, edits, file, line, field, message fragment)
CASES = [
    ("shared-vpc-two-hosts", [(F, "    project: proj-edge\n", "    project: proj-core\n")], F, 26, "clusters[2].network",
     "project 'proj-core' would be attached to two Shared VPC host projects: 'net-shared' (network of "
     "clusters[0] 'c1') and 'net-solo' (network 'solo')"),
    ("yaml-syntax", [(C, "protocol: GRPC}", "protocol: GRPC")], C, 9, "<document>",
     "YAML syntax error"),
    ("duplicate-yaml-key", [(C, "", "namespace: other\n")], C, 9, "<document>",
     "duplicate key 'namespace'"),
    ("unknown-field", [(A, "serviceAccount: alpha", "serviceAcount: alpha")], A, 4, "serviceAcount",
     "unknown field 'serviceAcount'; did you mean 'serviceAccount'?"),
    ("missing-field", [(C, "namespace: gamma\n", "")], C, 1, "namespace",
     "required field 'namespace' is missing"),
    ("duplicate-service-name",
     [("services/gamma2.yaml", "", manifests.SERVICE_C.replace("host: gamma.", "host: gamma2.")
       .replace("namespace: gamma", "namespace: other"))],
     "services/gamma2.yaml", 1, "name", "duplicate service name 'gamma' (also declared in gamma.yaml)"),
    ("same-namespace-and-name-different-host",
     [("services/gamma2.yaml", "", manifests.SERVICE_C.replace("host: gamma.", "host: gamma2."))],
     "services/gamma2.yaml", 2, "host",
     "service 'gamma' in namespace 'gamma' is also declared in gamma.yaml with host "
     "'gamma.svc.test.example'; one service has one host"),
    ("duplicate-host",
     [("services/zeta.yaml", "", manifests.SERVICE_C.replace("name: gamma", "name: zeta")),
      (L, "", "zeta: [c1]\n")],
     "services/zeta.yaml", 2, "host",
     "host 'gamma.svc.test.example' is already the host of service 'gamma' (gamma.yaml)"),
    ("host-outside-domains", [(C, "host: gamma.svc.test.example", "host: gamma.other.example")], C, 2,
     "host", "host 'gamma.other.example' is not under a declared domain (svc.test.example)"),
    ("host-not-dns", [(C, "host: gamma.svc.test.example", "host: Gamma_svc.test.example")], C, 2,
     "host", "'Gamma_svc.test.example' is not a valid DNS name"),
    ("duplicate-port-name", [(C, "name: grpc", "name: http")], C, 8, "ports[1].name",
     "duplicate port name 'http'"),
    ("duplicate-port-number", [(C, "number: 9090", "number: 8080")], C, 8, "ports[1].number",
     "duplicate port number 8080"),
    ("unknown-host", [(B, "  - gamma.svc", "  - gama.svc")], B, 9, "calls[0].host",
     "calls unknown host 'gama.svc.test.example'; did you mean 'gamma.svc.test.example'?"),
    ("unknown-port", [(A, "port: 9090", "port: 9999")], A, 12, "calls[1].port",
     "gamma.svc.test.example has no port 9999; its ports: 8080 (http), 9090 (grpc)"),
    ("service-without-location", [(L, "gamma: [c1, c2]\n", "")], C, 1, "name",
     "service 'gamma' has no location; add it to locations.yaml"),
    ("location-on-unknown-cluster", [(L, "gamma: [c1, c2]", "gamma: [c1, c3]")], L, 5,
     "gamma[1].cluster", "unknown cluster 'c3'"),
    ("location-for-unknown-service", [(L, "", "zeta: [c1]\n")], L, 6, "zeta",
     "location for unknown service 'zeta'"),
    ("standby-without-primary", [(L, "c1, role: primary", "c1, role: standby")], L, 3,
     "beta[0].role", "a standby needs a primary"),
    ("weights-not-100",
     [(L, "gamma: [c1, c2]", "gamma: [{cluster: c1, weight: 60}, {cluster: c2, weight: 30}]")],
     L, 5, "gamma", "weights sum to 90, not 100"),
    ("weights-mixed", [(L, "gamma: [c1, c2]", "gamma: [{cluster: c1, weight: 100}, c2]")], L, 5,
     "gamma[1]", "either every location of a service has a weight, or none has"),
    ("roles-mixed", [(L, "  - {cluster: c2, role: standby}", "  - {cluster: c2}")], L, 4, "beta[1]",
     "either every location of a service has a role, or none has"),
    ("tier-policy", [(B, "  - gamma.svc.test.example\n", "  - gamma.svc.test.example\n"
                      "  - alpha.svc.test.example\n")], B, 10, "calls[1].host",
     "tier 'core' may not call tier 'edge'"),
    ("location-tier-mismatch", [(L, "alpha: [e1]", "alpha: [c1]")], L, 1, "alpha[0].cluster",
     "service 'alpha' is in tier 'edge' but cluster 'c1' is in tier 'core'"),
    ("duplicate-cluster", [(F, "  - name: e1", "  - name: c2")], F, 22, "clusters[2].name",
     "duplicate cluster name 'c2' (first declared as clusters[1])"),
    ("unknown-network", [(F, "us-west1\n    network: shared", "us-west1\n    network: sharde")], F, 19,
     "clusters[1].network", "unknown network 'sharde'; did you mean 'shared'?"),
    ("unknown-tier", [(F, "    tier: edge\n", "    tier: egde\n")], F, 27, "clusters[2].tier",
     "unknown tier 'egde'; did you mean 'edge'?"),
    ("unknown-tier-in-policy", [(F, "mayCall: [edge, core]", "mayCall: [edge, cor]")], F, 8,
     "tiers.edge.mayCall[1]", "unknown tier 'cor'"),
    ("duplicate-east-west-address", [(F, "external: 192.0.2.2", "external: 192.0.2.1")], F, 21,
     "clusters[1].eastWest.external", "east-west address 192.0.2.1 is already used by cluster 'c1'"),
    ("zone-outside-region", [(F, "zones: [europe-west1-b]", "zones: [us-east1-b]")], F, 25,
     "clusters[2].zones[0]", "zone 'us-east1-b' is not a zone of region 'europe-west1'"),
    ("bad-duration", [(B, "timeout: 2s", "timeout: 2 seconds")], B, 11, "traffic.timeout",
     "'2 seconds' is not a duration such as 500ms, 2s, 1m or 1h"),
    ("bad-ip", [(F, "internal: 10.0.0.1", "internal: 10.0.0.300")], F, 15,
     "clusters[0].eastWest.internal", "'10.0.0.300' is not an IPv4 address"),
    ("bad-enum", [(C, "protocol: GRPC", "protocol: grpc")], C, 8, "ports[1].protocol", "must be"),
    ("call-duplicate", [(B, "  - gamma.svc.test.example\n", "  - gamma.svc.test.example\n"
                         "  - gamma.svc.test.example\n")], B, 10, "calls[1]", "duplicate call"),
    ("ranges-overlap", [(F, "external: 192.0.2.1}\n", "external: 192.0.2.1}\n" + RANGES.replace(
        "pods: 10.64.0.0/14", "pods: 10.0.0.0/14"))], F, 16, "clusters[0].ipRanges.pods",
     "10.0.0.0/14 overlaps c1 nodes on network 'shared'"),
    ("internal-address-outside-nodes", [(F, "external: 192.0.2.1}\n", "external: 192.0.2.1}\n" + RANGES.replace(
        "nodes: 10.0.0.0/20", "nodes: 10.1.0.0/20"))], F, 15, "clusters[0].eastWest.internal",
     "internal east-west address 10.0.0.1 is outside the node range 10.1.0.0/20"),
    ("control-plane-not-28", [(F, "external: 192.0.2.1}\n", "external: 192.0.2.1}\n" + RANGES.replace(
        "172.16.0.0/28", "172.16.0.0/24"))], F, 16, "clusters[0].ipRanges.controlPlane",
     "the control-plane range must be a /28"),
    ("bad-cidr", [(F, "external: 192.0.2.1}\n", "external: 192.0.2.1}\n" + RANGES.replace(
        "nodes: 10.0.0.0/20", "nodes: 10.0.0.1/20"))], F, 16, "clusters[0].ipRanges.nodes",
     "'10.0.0.1/20' is not an IPv4 CIDR block"),
    ("reserved-namespace", [(C, "namespace: gamma", "namespace: kube-system")], C, 3, "namespace",
     "namespace 'kube-system' belongs to the platform"),
    ("shared-identity", [("services/zeta.yaml", "", ZETA.replace("serviceAccount: zeta", "serviceAccount: gamma")),
                         (L, "", "zeta: [c1]\n")], "services/zeta.yaml", 4, "serviceAccount",
     "service account 'gamma' in namespace 'gamma' is already the identity of service 'gamma'"),
    ("shared-selector", [("services/zeta.yaml", "", ZETA + "selector: {app: gamma}\n"), (L, "", "zeta: [c1]\n")],
     "services/zeta.yaml", 8, "selector", "would also select the pods of service 'gamma'"),
    ("istio-port", [(C, "number: 9090", "number: 15021")], C, 8, "ports[1]",
     "port 15021 is used by Istio's proxies itself"),
    ("unknown-retry-condition", [(B, "retries: 2", "retries: {attempts: 2, retryOn: '5xx,bogus'}")], B, 12,
     "traffic.retries", "unknown retryOn condition(s) 'bogus'"),
    ("bad-label-value", [(C, "", "selector: {app: 'bad value!'}\n")], C, 9, "selector.app", "'bad value!' is not"),
    ("null-location", [(L, "gamma: [c1, c2]", "gamma:")], L, 5, "gamma", "must be a valid list"),
    ("stray-file", [("location.yaml", "", "x: [c1]\n")], "location.yaml", 1, "<document>",
     "unexpected manifest file"),
]


@pytest.mark.parametrize(("edits", "file", "line", "field", "message"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_error_names_file_line_field_and_cause(
    tmp_path: Path, edits: list[tuple[str, str, str]], file: str, line: int, field: str, message: str
) -> None:
    root = manifests.write(tmp_path / "stack", manifests.edited(edits))
    with pytest.raises(ManifestError) as caught:
        load(root)
    rendered = [d.render() for d in caught.value.diagnostics]
    prefix = f"stack/{file}:{line}: {field}: "
    matching = [r for r in rendered if r.startswith(prefix) and message in r]
    assert matching, f"expected {prefix}…{message}…; got:\n" + "\n".join(rendered)


def test_a_broken_location_entry_is_the_only_error(tmp_path: Path) -> None:
    """One bad entry must not hide the other services' locations (and report them all missing)."""
    root = manifests.write(tmp_path / "stack", manifests.edited([(L, "gamma: [c1, c2]", "gamma:")]))
    with pytest.raises(ManifestError) as caught:
        load(root)
    assert [d.field for d in caught.value.diagnostics] == ["gamma"]


def test_the_base_manifest_is_valid(tmp_path: Path) -> None:
    """Each case above fails because of its edit, not because the base was already broken."""
    loaded = load(manifests.write(tmp_path / "stack", manifests.BASE))
    assert loaded.warnings == ()
    assert len(loaded.world.services) == 3


def test_all_errors_of_all_files_are_reported_together_in_file_order(tmp_path: Path) -> None:
    files = manifests.edited([
        (C, "name: grpc", "name: http"),
        (A, "port: 9090", "port: 9999"),
        (F, "us-west1\n    network: shared", "us-west1\n    network: nowhere"),
    ])
    with pytest.raises(ManifestError) as caught:
        load(manifests.write(tmp_path / "stack", files))
    places = [(d.file, d.line) for d in caught.value.diagnostics]
    assert places == sorted(places)
    assert {d.reason for d in caught.value.diagnostics} >= {
        "duplicate-port-name", "unknown-port", "unknown-network"}


def test_missing_fleet_and_locations_files_are_errors(tmp_path: Path) -> None:
    files = {k: v for k, v in manifests.BASE.items() if k.startswith("services/")}
    with pytest.raises(ManifestError) as caught:
        load(manifests.write(tmp_path / "stack", files))
    reasons = [(d.file, d.reason) for d in caught.value.diagnostics]
    assert ("stack/fleet.yaml", "missing-file") in reasons
    assert ("stack/locations.yaml", "missing-file") in reasons


def test_a_service_nobody_calls_is_a_warning_not_an_error(tmp_path: Path) -> None:
    files = manifests.edited([(A, "ingress: true\n", "")])
    loaded = load(manifests.write(tmp_path / "stack", files))
    assert [w.reason for w in loaded.warnings] == ["no-callers"]
    assert loaded.warnings[0].render().startswith("stack/services/alpha.yaml:1: name: warning: ")


def test_single_file_bundle_reports_lines_inside_the_bundle(tmp_path: Path) -> None:
    bundle = manifests.FLEET + "services:\n" + "".join(
        "  - " + text.replace("\n", "\n    ").rstrip() + "\n"
        for text in (manifests.SERVICE_A, manifests.SERVICE_B, manifests.SERVICE_C)
    ) + "locations:\n" + "".join("  " + line + "\n" for line in manifests.LOCATIONS.splitlines())
    path = tmp_path / "fleet.yaml"
    path.write_text(bundle)
    assert len(load(path).world.services) == 3
    path.write_text(bundle.replace("port: 9090", "port: 9999"))
    with pytest.raises(ManifestError) as caught:
        load(path)
    [diagnostic] = caught.value.diagnostics
    line = next(i for i, text in enumerate(bundle.splitlines(), 1) if text.strip() == "port: 9090")
    assert diagnostic.render().startswith(f"fleet.yaml:{line}: services[0].calls[1].port: ")
