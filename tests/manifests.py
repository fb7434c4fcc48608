"""Small manifests for tests, written as YAML text so that line numbers in errors are meaningful."""

from __future__ import annotations

from pathlib import Path

FLEET = """\
domains: [svc.test.example]
trustDomain: test.example
networks:
  shared: {project: net-shared}
  solo: {project: net-solo}
tiers:
  core: {mayCall: [core]}
  edge: {mayCall: [edge, core]}
clusters:
  - name: c1
    project: proj-core
    region: us-east1
    network: shared
    tier: core
    eastWest: {internal: 10.0.0.1, external: 192.0.2.1}
  - name: c2
    project: proj-core
    region: us-west1
    network: shared
    tier: core
    eastWest: {internal: 10.0.0.2, external: 192.0.2.2}
  - name: e1
    project: proj-edge
    region: europe-west1
    zones: [europe-west1-b]
    network: solo
    tier: edge
    eastWest: {external: 192.0.2.3}
"""

SERVICE_A = """\
name: alpha
host: alpha.svc.test.example
namespace: alpha
serviceAccount: alpha
tier: edge
ingress: true
ports:
  - {name: http, number: 8080, protocol: HTTP}
calls:
  - beta.svc.test.example
  - host: gamma.svc.test.example
    port: 9090
"""

SERVICE_B = """\
name: beta
host: beta.svc.test.example
namespace: beta
serviceAccount: beta
tier: core
ports:
  - {name: http, number: 8080, protocol: HTTP}
calls:
  - gamma.svc.test.example
traffic:
  timeout: 2s
  retries: 2
"""

SERVICE_C = """\
name: gamma
host: gamma.svc.test.example
namespace: gamma
serviceAccount: gamma
tier: core
ports:
  - {name: http, number: 8080, protocol: HTTP}
  - {name: grpc, number: 9090, protocol: GRPC}
"""

LOCATIONS = """\
alpha: [e1]
beta:
  - {cluster: c1, role: primary}
  - {cluster: c2, role: standby}
gamma: [c1, c2]
"""

BASE = {
    "fleet.yaml": FLEET,
    "locations.yaml": LOCATIONS,
    "services/alpha.yaml": SERVICE_A,
    "services/beta.yaml": SERVICE_B,
    "services/gamma.yaml": SERVICE_C,
}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def edited(edits: list[tuple[str, str, str]], base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` with each (file, old, new) applied; each `old` must occur exactly once."""
    files = dict(base or BASE)
    for name, old, new in edits:
        text = files.get(name, "")
        if old:
            assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {name}"
            files[name] = text.replace(old, new)
        else:
            files[name] = text + new
    return files
