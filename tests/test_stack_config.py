"""The stack configuration (`mesh:` keys of Pulumi.<stack>.yaml) is validated like the manifest.

From the stack file (`mesh preview`): every problem as `Pulumi.<stack>.yaml:line: key: message`,
YAML errors and duplicate keys included. From the program (a real `pulumi up`, values as Pulumi
passes them): the same checks, as `mesh:key: message`, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest

from mesh import preview
from mesh.diagnostics import ManifestError
from mesh.infra import stack_config
from mesh.infra.stack_config import KEYS, StackConfigError, check_pem_certificate, parse_stack_config
from mesh.program import read_config

ROOT = Path(__file__).resolve().parent.parent
ROOT_CA = (ROOT / "tests/fixtures/root-ca.pem").read_text()
STACK = "config:\n  gcp:project: acme-platform\n  mesh:manifest: stacks/prod\n  mesh:istioVersion: 1.31.1\n"
S = "Pulumi.test.yaml"
PEM_BODY = "".join(ROOT_CA.splitlines(keepends=True)[1:-1])
DAMAGED = "-----BEGIN CERTIFICATE-----\n" + PEM_BODY[:40] + "\n-----END CERTIFICATE-----\n"


def indented(pem: str) -> str:
    return "  mesh:rootCaCertificate: |\n" + "".join(f"    {line}\n" for line in pem.splitlines())


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: fleet-mesh\nruntime: python\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def errors_of(project: Path, stack_text: str) -> list[str]:
    (project / S).write_text(stack_text)
    with pytest.raises(ManifestError) as caught:
        preview.read_stack_config(project, "test")
    return [d.render() for d in caught.value.diagnostics]


# (id, text appended to STACK (or a replacement of it), line, key, message)
CASES = [
    ("unknown-key", "  mesh:releaseChanel: REGULAR\n", 5, "mesh:releaseChanel",
     "unknown key; did you mean mesh:releaseChannel?"),
    ("bad-enum", "  mesh:releaseChannel: regular\n", 5, "mesh:releaseChannel",
     "must be 'RAPID', 'REGULAR' or 'STABLE' (got the string 'regular'); did you mean 'REGULAR'?"),
    ("string-for-list", "  mesh:clusters: core-use1-a\n", 5, "mesh:clusters",
     "must be a list (got the string 'core-use1-a')"),
    ("bad-cluster-name", "  mesh:clusters: [Core_1]\n", 5, "mesh:clusters[0]", "'Core_1' is not a GKE cluster name"),
    ("repeated-cluster", "  mesh:clusters: [a, a]\n", 5, "mesh:clusters", "lists 'a' more than once"),
    ("cidr-without-prefix", "  mesh:eastWestSourceRanges: [10.0.0.0]\n", 5, "mesh:eastWestSourceRanges[0]",
     "'10.0.0.0' is not an IPv4 CIDR block with its prefix length"),
    ("cidr-host-bits", "  mesh:ingressSourceRanges: [10.0.0.1/8]\n", 5, "mesh:ingressSourceRanges[0]",
     "has host bits set (did you mean 10.0.0.0/8?)"),
    ("nested-unknown-field", "  mesh:masterAuthorizedNetworks:\n    - cidrBlock: 10.0.0.0/8\n      displayname: ci\n",
     7, "mesh:masterAuthorizedNetworks[0].displayname", "unknown field 'displayname'; did you mean 'displayName'?"),
    ("revisions-without-version", "  mesh:istioRevisions: [1.30.2]\n", 5, "mesh:istioRevisions",
     "istioVersion 1.31.1 must be one of istioRevisions (1.30.2)"),
    ("version-as-number", STACK.replace("1.31.1", "1.31"), 4, "mesh:istioVersion",
     "must be a string (got the number 1.31); if you mean the text, quote it: '1.31'"),
    ("bad-version", STACK.replace("1.31.1", "'1.31'"), 4, "mesh:istioVersion",
     "'1.31' is not an Istio version such as 1.31.1"),
    ("pem-garbage", "  mesh:rootCaCertificate: hello\n", 5, "mesh:rootCaCertificate", "is not a PEM certificate"),
    ("pem-damaged", indented(DAMAGED), 5, "mesh:rootCaCertificate", "is damaged"),
    ("pem-private-key", indented(ROOT_CA.replace("CERTIFICATE", "PRIVATE KEY")), 5, "mesh:rootCaCertificate",
     "holds a private key"),
    ("pem-two-certificates", indented(ROOT_CA + ROOT_CA), 5, "mesh:rootCaCertificate",
     "must hold exactly one CERTIFICATE block"),
    ("plain-secret", "  mesh:rootCaKey: abc\n", 5, "mesh:rootCaKey",
     "must be a secret: `pulumi config set --secret mesh:rootCaKey`"),
    ("bad-peer", "  mesh:peerStacks: [prod]\n", 5, "mesh:peerStacks[0]",
     "'prod' is not a stack name org/project/stack"),
    ("bad-chart-repository", "  mesh:chartRepository: http://charts\n", 5, "mesh:chartRepository",
     "is not an https:// or oci:// address"),
    ("part-beyond-of", "  mesh:meshConfigPart: {cluster: a, part: 3, of: 2}\n", 5, "mesh:meshConfigPart.of",
     "part 3 of 2 does not exist"),
    ("part-one-elsewhere", "  mesh:meshConfigPart: {cluster: a, part: 1, of: 2}\n", 5, "mesh:meshConfigPart",
     "part 1 is held by the stack managing a: set mesh:clusters to [a] alone"),
    ("part-with-clusters", "  mesh:clusters: [a]\n  mesh:meshConfigPart: {cluster: a, part: 2, of: 2}\n", 6,
     "mesh:meshConfigPart", "manages no cluster: remove mesh:clusters"),
    ("part-without-peers", "  mesh:meshConfigPart: {cluster: a, part: 2, of: 2}\n", 5, "mesh:meshConfigPart",
     "list that stack in mesh:peerStacks"),
    ("part-as-string", "  mesh:meshConfigPart: a/2\n", 5, "mesh:meshConfigPart", "must be a mapping"),
    ("duplicate-key", "  mesh:manifest: other\n", 5, "<document>", "duplicate key 'mesh:manifest'"),
    ("yaml-syntax", "  mesh:clusters: [a\n", 5, "<document>", "this '[' is never closed"),
    ("yaml-1.1-scalar", "  gcp:disable: on\n", 5, "<document>", "'on' is the boolean true in YAML 1.1"),
    ("config-not-a-mapping", "config: [a]\n", 1, "config", "must be a mapping"),
]


@pytest.mark.parametrize(("text", "line", "key", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_stack_file_errors_name_file_line_key_and_cause(project: Path, text: str, line: int, key: str,
                                                         message: str) -> None:
    rendered = errors_of(project, text if text.startswith("config:") else STACK + text)
    prefix = f"{S}:{line}: {key}: "
    assert [r for r in rendered if r.startswith(prefix) and message in r], rendered


def test_a_valid_stack_file_with_a_real_root_and_a_secret_key_passes(project: Path) -> None:
    (project / S).write_text(STACK + indented(ROOT_CA) + "  mesh:rootCaKey:\n    secure: v1:abc\n")
    name, config, secrets = preview.read_stack_config(project, "test")
    assert name == "fleet-mesh" and secrets == ["mesh:rootCaKey"]
    assert config["mesh:rootCaCertificate"].startswith("-----BEGIN CERTIFICATE-----")


def test_the_example_stack_file_passes() -> None:
    assert "mesh:istioVersion" in stack_config.read_stack_file(ROOT / "Pulumi.prod.yaml")


@pytest.mark.parametrize(("text", "message"), [
    ("name: [fleet\n", "Pulumi.yaml:1: <document>: YAML syntax error at column 7: this '[' is never closed"),
    ("runtime: python\n", "Pulumi.yaml:1: name: the project needs a name (a string)"),
    ("name: a\nname: b\n", "Pulumi.yaml:2: <document>: duplicate key 'name' (YAML would keep only the last one)"),
])
def test_project_file_errors_are_reported_at_their_line(project: Path, text: str, message: str) -> None:
    (project / "Pulumi.yaml").write_text(text)
    (project / S).write_text(STACK)
    with pytest.raises(ManifestError) as caught:
        preview.read_stack_config(project, "test")
    assert [d.render() for d in caught.value.diagnostics] == [message]


def test_pulumi_yaml_declares_exactly_the_known_keys() -> None:
    import yaml

    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["template"]["config"]
    assert set(declared) == {f"mesh:{k}" for k in KEYS}


@pytest.fixture
def runtime_config() -> object:
    yield pulumi.runtime.set_all_config
    pulumi.runtime.set_all_config({}, [])


def test_the_program_reads_every_mesh_key_and_reports_each_without_a_traceback(runtime_config: object) -> None:
    pulumi.runtime.set_all_config({"mesh:istioVersion": "1.31.1", "mesh:releaseChanel": "REGULAR",
                                   "mesh:clusters": "[a, b", "mesh:rootCaKey": "secret", "gcp:project": "p"},
                                  ["mesh:rootCaKey"])
    values = read_config()
    assert "rootCaKey" not in values and "releaseChanel" in values
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(values)
    assert str(caught.value).splitlines() == [
        "invalid stack configuration:",
        "  mesh:releaseChanel: unknown key; did you mean mesh:releaseChannel?",
        "  mesh:clusters: must be a list (got the string '[a, b')",
    ]


def test_the_program_decodes_json_lists(runtime_config: object) -> None:
    pulumi.runtime.set_all_config({"mesh:istioVersion": "1.31.1", "mesh:clusters": '["core-use1-a"]'}, [])
    assert parse_stack_config(read_config()).clusters == ["core-use1-a"]


def test_pem_check_accepts_the_fixture_root() -> None:
    assert check_pem_certificate(ROOT_CA) == ROOT_CA


def test_the_program_decodes_a_json_object(runtime_config: object) -> None:
    pulumi.runtime.set_all_config({"mesh:istioVersion": "1.31.1", "mesh:clusters": '["core-use1-a"]',
                                   "mesh:meshConfigPart": '{"cluster": "core-use1-a", "part": 1, "of": 3}'}, [])
    part = parse_stack_config(read_config()).mesh_config_part
    assert part is not None and (part.cluster, part.part, part.of) == ("core-use1-a", 1, 3)
