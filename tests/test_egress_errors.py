"""Every egress validation rule, one case each: the exact `file:line: field` and the message a user reads.

Each case edits one small valid manifest with approved external destinations (the manifest of
tests/manifests.py plus `EXTERNALS` below; beta calls two of them) and names the diagnostic it
must produce. The expected line is that of the edited text (`at`), so a case says which node it means.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.compile import compile_fleet
from mesh.manifest import ManifestError, load
from mesh.verify import verify

import manifests

A, B, F = "services/alpha.yaml", "services/beta.yaml", "fleet.yaml"

EXTERNALS = """\
externals:
  - name: pay
    hosts: [api.pay.example.net]
    ports: [{number: 443, protocol: TLS}]
    tiers: [core]
    egressGateway: true
  - name: db
    hosts: [db.private.example]
    addresses: [172.20.0.0/24]
    ports: [{number: 5432, protocol: TCP}]
    tiers: [core]
  - name: apis
    hosts: ["*.googleapis.com"]
    addresses: [199.36.153.8/30]
    ports: [{number: 443, protocol: TLS}]
    allWorkloads: true
"""
BETA_CALLS = "  - gamma.svc.test.example\n  - {host: api.pay.example.net, port: 443}\n  - db.private.example\n"
BASE = manifests.edited([(F, "", EXTERNALS), (B, "  - gamma.svc.test.example\n", BETA_CALLS)])
RANGES = ("    ipRanges: {nodes: 172.20.0.0/20, pods: 10.64.0.0/14, services: 10.200.0.0/20, "
          "controlPlane: 172.16.0.0/28}\n")

# (id, edits, file, text on the expected line, field, message fragment)
CASES = [
    ("mesh-host-with-a-typo-in-its-domain", [(B, "  - gamma.svc.test.example\n", "  - gamma.svc.test.exampl\n")],
     B, "gamma.svc.test.exampl", "calls[0].host", "not an approved external destination; the platform approves "
     "destinations in fleet.yaml `externals`; did you mean 'gamma.svc.test.example'?"),
    ("not-approved", [(B, "  - db.private.example\n", "  - db.private.example\n  - api.unknown.example.net\n")],
     B, "api.unknown.example.net", "calls[3].host",
     "api.unknown.example.net is outside the mesh and not an approved external destination"),
    ("tier-not-approved", [(A, "    port: 9090\n", "    port: 9090\n  - api.pay.example.net\n")],
     A, "  - api.pay.example.net", "calls[2].host", "tier 'edge' may not call external 'pay'"),
    ("port-not-declared", [(B, "api.pay.example.net, port: 443", "api.pay.example.net, port: 80")],
     B, "port: 80", "calls[1].port", "external 'pay' (api.pay.example.net) has no port 80; its ports: 443 (TLS)"),
    ("host-in-mesh-domain", [(F, "hosts: [db.private.example]", "hosts: [db.svc.test.example]")],
     F, "db.svc.test.example", "externals[1].hosts[0]", "db.svc.test.example is inside the mesh domain"),
    ("wildcard-overlaps-wildcard",
     [(F, 'hosts: ["*.googleapis.com"]', 'hosts: ["*.googleapis.com", "*.storage.googleapis.com"]')],
     F, "*.storage.googleapis.com", "externals[2].hosts[1]", "*.storage.googleapis.com overlaps *.googleapis.com"),
    ("wildcard-overlaps-host", [(F, "hosts: [db.private.example]", 'hosts: [db.private.example, "*.example.net"]')],
     F, "*.example.net", "externals[1].hosts[1]", "*.example.net overlaps api.pay.example.net (externals[0] 'pay')"),
    ("wildcard-overlaps-mesh", [(F, 'hosts: ["*.googleapis.com"]', 'hosts: ["*.test.example"]')],
     F, "*.test.example", "externals[2].hosts[0]", "*.test.example is inside the mesh domain svc.test.example"),
    ("cidr-overlaps-fleet", [(F, "external: 192.0.2.1}\n", "external: 192.0.2.1}\n" + RANGES)],
     F, "addresses: [172.20.0.0/24]", "externals[1].addresses[0]",
     "172.20.0.0/24 overlaps the fleet's own range c1 nodes"),
    ("duplicate-external", [(F, "  - name: db\n", "  - name: pay\n")], F, "  - name: pay\n    hosts: [db",
     "externals[1].name", "duplicate external name 'pay'"),
    ("unknown-tier", [(F, "    tiers: [core]\n    egressGateway", "    tiers: [cor]\n    egressGateway")],
     F, "tiers: [cor]", "externals[0].tiers[0]", "unknown tier 'cor'"),
    ("gateway-wildcard", [(F, "    allWorkloads: true\n", "    allWorkloads: true\n    egressGateway: true\n")],
     F, 'hosts: ["*.googleapis.com"]', "externals[2].hosts", "exactly one exact host"),
    ("originate-without-http", [(F, "    egressGateway: true\n", "    egressGateway: true\n    originateTls: true\n")],
     F, "originateTls: true", "externals[0].originateTls", "originateTls needs an HTTP port"),
    ("tiers-and-all", [(F, "    allWorkloads: true\n", "    allWorkloads: true\n    tiers: [core]\n")],
     F, "  - name: apis", "externals[2]", "give tiers or allWorkloads: true, not both"),
    ("tcp-wildcard", [(F, "    addresses: [199.36.153.8/30]\n    ports: [{number: 443, protocol: TLS}]\n",
                       "    ports: [{number: 443, protocol: TCP}]\n")],
     F, "protocol: TCP}]\n    allWorkloads", "externals[2].ports[0]",
     "TCP port 443 on a wildcard host needs fixed addresses"),
    ("reserved-namespace", [(A, "namespace: alpha", "namespace: mesh-external")], A, "namespace: mesh-external",
     "namespace", "namespace 'mesh-external' belongs to the platform's egress path"),
]


def _line(text: str, marker: str) -> int:
    index = text.index(marker)
    return text.count("\n", 0, index) + 1


@pytest.mark.parametrize(("edits", "file", "at", "field", "message"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_each_egress_error_names_file_line_field_and_cause(
    tmp_path: Path, edits: list[tuple[str, str, str]], file: str, at: str, field: str, message: str
) -> None:
    files = manifests.edited(edits, BASE)
    root = manifests.write(tmp_path / "stack", files)
    with pytest.raises(ManifestError) as caught:
        load(root)
    rendered = [d.render() for d in caught.value.diagnostics]
    prefix = f"stack/{file}:{_line(files[file], at)}: {field}: "
    matching = [r for r in rendered if prefix in r and message in r]
    assert matching, f"expected {prefix}…{message}…; got:\n" + "\n".join(rendered)


def test_the_base_manifest_with_externals_is_valid_and_verifies(tmp_path: Path) -> None:
    """Each case fails because of its edit; the base compiles to output that passes `verify`."""
    world = load(manifests.write(tmp_path / "stack", BASE)).world
    assert [(c.caller, c.external, c.ports) for c in world.external_calls if c.external != "apis"] == [
        ("beta", "db", None), ("beta", "pay", (443,))]
    assert verify(world, compile_fleet(world)) == []


def test_all_egress_errors_are_reported_together(tmp_path: Path) -> None:
    files = manifests.edited([(B, "api.pay.example.net, port: 443", "api.pay.example.net, port: 80"),
                              (F, "hosts: [db.private.example]", "hosts: [db.svc.test.example]")], BASE)
    with pytest.raises(ManifestError) as caught:
        load(manifests.write(tmp_path / "stack", files))
    reasons = {d.reason for d in caught.value.diagnostics}
    assert {"unknown-port", "external-in-mesh-domain"} <= reasons
