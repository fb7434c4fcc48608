"""Every validation rule, one case each: the exact `file:line: field` and the message a user reads.

Each case edits one small valid manifest (tests/manifests.py) and names the diagnostic it must
produce; line numbers refer to the edited files and were checked by reading them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.manifest import ManifestError, load

import manifests


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files are named relative to the working directory, as a user running `mesh` there sees them."""
    monkeypatch.chdir(tmp_path)


A, B, C = "services/alpha.yaml", "services/beta.yaml", "services/gamma.yaml"
ZETA = ("name: zeta\nhost: zeta.svc.test.example\nnamespace: gamma\nserviceAccount: zeta\ntier: core\n"
        "ports:\n  - {name: http, number: 8080, protocol: HTTP}\n")
RANGES = ("    ipRanges: {nodes: 10.0.0.0/20, pods: 10.64.0.0/14, services: 10.200.0.0/20, "
          "controlPlane: 172.16.0.0/28}\n")
F, L = "fleet.yaml", "locations.yaml"

# (id, edits, file, line, field, message fragment)
CASES = [
    ("shared-vpc-two-hosts", [(F, "    project: proj-edge\n", "    project: proj-core\n")], F, 26,
     "clusters[2].network",
     "project 'proj-core' would be attached to two Shared VPC host projects: 'net-shared' (network of "
     "clusters[0] 'c1') and 'net-solo' (network 'solo')"),
    ("yaml-syntax", [(C, "protocol: GRPC}", "protocol: GRPC")], C, 8, "<document>",
     "YAML syntax error at column 5: this '{' is never closed"),
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
    ("istio-port", [(C, "number: 9090", "number: 15021")], C, 8, "ports[1].number",
     "port 15021 is in Istio's reserved range 15000-15090"),
    ("unknown-retry-condition", [(B, "retries: 2", "retries: {attempts: 2, retryOn: '5xx,bogus'}")], B, 12,
     "traffic.retries.retryOn", "unknown retryOn condition(s) 'bogus'"),
    ("bad-label-value", [(C, "", "selector: {app: 'bad value!'}\n")], C, 9, "selector.app", "'bad value!' is not"),
    ("null-location", [(L, "gamma: [c1, c2]", "gamma:")], L, 5, "gamma", "must be a list (got an empty value)"),
    ("stray-file", [("location.yaml", "", "x: [c1]\n")], "location.yaml", 1, "<document>",
     "unexpected manifest file"),
    # Every rule the README promises, exactly (issue 12, item 5).
    *[(f"istio-port-{n}", [(C, "number: 9090", f"number: {n}")], C, 8, "ports[1].number",
       f"port {n} is in Istio's reserved range 15000-15090") for n in (15000, 15002, 15010, 15017, 15089, 15090)],
    ("kube-namespace", [(C, "namespace: gamma", "namespace: kube-flannel")], C, 3, "namespace",
     "namespace 'kube-flannel' belongs to the platform"),
    ("retry-on-status-out-of-range", [(B, "retries: 2", "retries: {attempts: 2, retryOn: '5xx,999'}")], B, 12,
     "traffic.retries.retryOn", "unknown retryOn condition(s) '999'"),
    ("no-node-pools", [(F, "    tier: edge\n", "    tier: edge\n    nodePools: []\n")], F, 28,
     "clusters[2].nodePools", "must list at least 1 entry"),
    ("cidr-without-prefix", [(F, "external: 192.0.2.1}\n", "external: 192.0.2.1}\n" + RANGES.replace(
        "nodes: 10.0.0.0/20", "nodes: 10.0.0.0"))], F, 16, "clusters[0].ipRanges.nodes",
     "'10.0.0.0' is not an IPv4 CIDR block with its prefix length, such as 10.0.0.0/20"),
    ("call-one-port-after-all", [(A, "", "  - {host: beta.svc.test.example, port: 8080}\n")], A, 13, "calls[2]",
     "redundant call to beta.svc.test.example port 8080: calls[0] calls every port of it already"),
    ("call-all-after-one-port", [(A, "", "  - gamma.svc.test.example\n")], A, 13, "calls[2]",
     "call to every port of gamma.svc.test.example, which calls[1] calls on one port already"),
    ("empty-service-file", [("services/zeta.yaml", "", "# to do\n")], "services/zeta.yaml", 1, "<document>",
     "a service file must define a service (this one is empty or only comments)"),
    ("not-a-yaml-file", [("services/README.md", "", "notes\n")], "services/README.md", 1, "<document>",
     "is not a YAML file: service files end in .yaml or .yml"),
    ("misnamed-services-folder", [("service/zeta.yaml", "", ZETA)], "service", 1, "<document>",
     "unexpected folder: service files go in services/; did you mean services/?"),
    ("empty-list-in-words", [(F, "domains: [svc.test.example]", "domains: []")], F, 1, "domains",
     "must list at least 1 entry"),
    # Strict types and names (item 4).
    ("snake-case-field", [(A, "serviceAccount: alpha", "service_account: alpha")], A, 4, "service_account",
     "unknown field 'service_account'; did you mean 'serviceAccount'? (field names are camelCase)"),
    ("snake-case-fleet-field", [(F, "", "mesh_id: x\n")], F, 29, "mesh_id", "did you mean 'meshId'?"),
    ("quoted-number", [(C, "number: 9090", "number: '9090'")], C, 8, "ports[1].number",
     "must be a number, not the string '9090': remove the quotes"),
    ("float-number", [(C, "number: 9090", "number: 9090.0")], C, 8, "ports[1].number",
     "must be a whole number, not 9090.0: write 9090"),
    ("quoted-boolean", [(A, "ingress: true", "ingress: 'off'")], A, 6, "ingress",
     "must be true or false, not the string 'off': write false without quotes"),
    ("string-as-number", [(C, "", "owner: 42\n")], C, 9, "owner",
     "must be a string (got the number 42); if you mean the text, quote it: '42'"),
    ("yaml-1.1-boolean", [(A, "ingress: true", "ingress: yes")], A, 6, "<document>",
     "column 10: 'yes' is the boolean true in YAML 1.1 but a string in YAML 1.2; write true for the boolean"),
    ("yaml-1.1-octal", [(C, "number: 9090", "number: 0750")], C, 8, "<document>",
     "'0750' is the number 488 in YAML 1.1 but the number 750 in YAML 1.2"),
    ("yaml-1.1-base-60", [(B, "timeout: 2s", "timeout: 1:30")], B, 11, "<document>",
     "'1:30' is the number 90 in YAML 1.1 but a string in YAML 1.2"),
    # Locations that point at the mistake (item 6).
    ("field-in-the-wrong-mapping", [(C, "", "timeout: 2s\n")], C, 9, "timeout",
     "unknown field 'timeout'; it belongs under 'traffic'"),
    ("key-with-bracket", [(A, "", "calls[0]: x\n")], A, 13, "calls[0]", "unknown field 'calls[0]'"),
    ("after-a-leading-empty-document", [(C, "name: gamma\n", "---\n---\nname: gamma\n"),
                                        (C, "name: grpc", "name: http")], C, 10, "ports[1].name",
     "duplicate port name 'http'"),
    ("unclosed-quote", [(C, "namespace: gamma", 'namespace: "gamma')], C, 3, "<document>",
     "YAML syntax error at column 12: this quote is never closed"),
    ("unclosed-bracket", [(L, "gamma: [c1, c2]", "gamma: [c1, c2")], L, 5, "<document>",
     "YAML syntax error at column 8: this '[' is never closed"),
    ("nul-byte", [(C, "namespace: gamma", "namespace: gam\x00ma")], C, 3, "<document>",
     "column 15: a NUL byte (U+0000) is not allowed in YAML; remove it"),
    ("ansi-escape", [(C, "tier: core", "tier: \x1b[31mcore")], C, 5, "<document>",
     "column 7: an escape character (U+001B, as in ANSI colour codes pasted from a terminal)"),
    ("non-character", [(C, "tier: core", "tier: core\ufffe")], C, 5, "<document>", "column 11: U+FFFE"),
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


# (id, edits, the only diagnostics' (file, line, field)): one mistake, one error, no cascade.
ONLY = [
    ("null-location-entry", [(L, "gamma: [c1, c2]", "gamma:")], [(L, 5, "gamma")]),
    ("bad-location-key", [(L, "gamma: [c1, c2]", "Gamma: [c1, c2]")], [(L, 5, "Gamma")]),
    ("locations-syntax-error", [(L, "gamma: [c1, c2]", "gamma: [c1, c2")], [(L, 5, "")]),
    ("locations-list-after-mapping", [(L, "", "- x\n")], [(L, 6, "")]),
    ("locations-file-missing", [(L, "alpha: [e1]\n", "")], None),
    ("service-syntax-error", [(C, "protocol: GRPC}", "protocol: GRPC")], [(C, 8, "")]),
    ("unknown-service-tier", [(C, "tier: core", "tier: cor")], [(C, 5, "tier")]),  # no tier mismatches on top
]


@pytest.mark.parametrize(("edits", "only"), [c[1:] for c in ONLY], ids=[c[0] for c in ONLY])
def test_one_mistake_gives_one_error(tmp_path: Path, edits: list[tuple[str, str, str]],
                                     only: list[tuple[str, int, str]] | None) -> None:
    files = manifests.edited(edits)
    if only is None:  # the locations file deleted: that is the one error
        files.pop(L)
        only = [(L, 1, "")]
    with pytest.raises(ManifestError) as caught:
        load(manifests.write(tmp_path / "stack", files))
    assert [(d.file, d.line, d.field) for d in caught.value.diagnostics] == [(f"stack/{f}", n, x) for f, n, x in only]


def test_did_you_mean_never_suggests_the_same_word(tmp_path: Path) -> None:
    root = manifests.write(tmp_path / "stack", manifests.edited([(C, "", "timeout: 2s\nport: 1\n")]))
    with pytest.raises(ManifestError) as caught:
        load(root)
    for diagnostic in caught.value.diagnostics:
        name = diagnostic.field
        assert f"did you mean {name!r}" not in diagnostic.message


def test_no_message_speaks_pydantic(tmp_path: Path) -> None:
    root = manifests.write(tmp_path / "stack", manifests.edited([
        (F, "domains: [svc.test.example]", "domains: []"), (C, "number: 9090", "number: x"),
        (L, "gamma: [c1, c2]", "gamma: [{cluster: c1, weight: 500}]"), (A, "ingress: true", "ingress: 3"),
        (B, "timeout: 2s", "timeout: [1]")]))
    with pytest.raises(ManifestError) as caught:
        load(root)
    text = "\n".join(d.render() for d in caught.value.diagnostics)
    assert len(caught.value.diagnostics) >= 5
    for raw in ("Input should", "after validation", "valid integer", "function-", "[key]"):
        assert raw not in text, text


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
