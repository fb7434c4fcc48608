"""The `mesh` command end to end, through a subprocess as a user runs it: output, files, exit status."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import manifests
import stack_fixture

ROOT = Path(__file__).resolve().parent.parent
PROJECT = stack_fixture.project()  # commands run here: its stacks/prod is the fixture


def mesh(*args: str | Path, seed: str = "0", cwd: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    return subprocess.run([sys.executable, "-m", "mesh", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def test_validate_example_stack() -> None:
    result = mesh("validate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("stacks/prod: ok — 8 clusters, 24 services")


def test_validate_reports_every_error_with_location_and_exits_1(tmp_path: Path) -> None:
    root = manifests.write(tmp_path / "stack", manifests.edited([
        ("services/gamma.yaml", "name: grpc", "name: http"),
        ("locations.yaml", "gamma: [c1, c2]", "gamma: [c1, c9]"),
    ]))
    result = mesh("validate", root, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert "stack/locations.yaml:5: gamma[1].cluster: unknown cluster 'c9'; declared clusters: c1, c2, e1" in lines
    assert "stack/services/gamma.yaml:8: ports[1].name: duplicate port name 'http'" in lines
    assert lines[-1] == "2 error(s); nothing was written."


def test_render_of_a_broken_manifest_writes_nothing(tmp_path: Path) -> None:
    root = manifests.write(tmp_path / "stack", manifests.edited([("fleet.yaml", "tier: edge\n", "tier: x\n")]))
    result = mesh("render", root, "--out", tmp_path / "out")
    assert result.returncode == 1
    assert not (tmp_path / "out").exists()


def test_render_is_byte_identical_across_runs_hash_seeds_and_file_order(tmp_path: Path) -> None:
    assert mesh("render", "--out", tmp_path / "a", seed="0").returncode == 0
    assert mesh("render", "--out", tmp_path / "b", seed="4242").returncode == 0
    # The same manifest written in reverse order: directory listing order must not matter.
    copy = tmp_path / "stack"
    files = sorted((PROJECT / "stacks/prod").rglob("*.yaml"), reverse=True)
    for source in files:
        target = copy / source.relative_to(PROJECT / "stacks/prod")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    assert mesh("render", copy, "--out", tmp_path / "c", seed="7").returncode == 0
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b") == tree_digest(tmp_path / "c")


def test_render_writes_one_folder_per_cluster_and_replaces_stale_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = mesh("render", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote ") and "for 8 clusters" in result.stdout
    clusters = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(clusters) == 8
    assert sorted(p.name for p in (out / "data-usw1-a").iterdir())[0] == "00-namespace.yaml"
    (out / "retired-cluster").mkdir()
    assert mesh("render", "--out", out).returncode == 0
    assert not (out / "retired-cluster").exists()


def test_render_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = mesh("render", "--out", tmp_path / "mine")
    assert result.returncode == 1
    assert "was not written by `mesh render`" in result.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_render_warns_about_placeholders_for_unpinned_addresses(tmp_path: Path) -> None:
    root = manifests.write(tmp_path / "stack", manifests.edited([
        ("fleet.yaml", "eastWest: {external: 192.0.2.3}", "eastWest: {}")]))
    # e1 serves nobody elsewhere: only pin removals that callers need produce placeholders.
    assert "placeholder" not in mesh("render", root, "--out", tmp_path / "o1").stderr
    root = manifests.write(tmp_path / "stack2", manifests.edited([
        ("fleet.yaml", "eastWest: {internal: 10.0.0.2, external: 192.0.2.2}", "eastWest: {internal: 10.0.0.2}")]))
    result = mesh("render", root, "--out", tmp_path / "o2")
    assert result.returncode == 0
    assert "wrote placeholder c2.external.eastwest.unresolved.invalid" in result.stderr
    assert "c2.external.eastwest.unresolved.invalid" in (tmp_path / "o2/e1/03-serviceentry.yaml").read_text()


def test_graph_json_describes_services_locations_and_calls() -> None:
    result = mesh("graph", "--format", "json")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    ledger = next(s for s in data["services"] if s["name"] == "ledger")
    assert {loc["role"] for loc in ledger["locations"]} == {"primary", "standby"}
    assert {"from": "payments", "to": "ledger", "ports": None} in data["calls"]


def test_graph_mermaid_draws_clusters_and_calls() -> None:
    result = mesh("graph", "--format", "mermaid")
    assert result.returncode == 0
    text = result.stdout
    assert text.startswith("flowchart LR\n")
    assert 'subgraph cluster__data_use1_a["data-use1-a · data · data"]' in text
    assert "core_use1_a__payments -.-> data_use1_a__ledger" in text


def test_schema_prints_json_schema_for_service_files() -> None:
    result = mesh("schema")
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False
    assert {"name", "host", "namespace", "serviceAccount", "tier", "ports"} <= set(schema["required"])


@pytest.mark.parametrize(("args", "status"), [(("--help",), 0), (("render", "--help"), 0), (("bogus",), 2),
                                               (("render",), 2)])
def test_usage(args: tuple[str, ...], status: int) -> None:
    result = mesh(*args)
    assert result.returncode == status
    assert "Traceback" not in result.stderr


def test_missing_path_is_a_clean_error(tmp_path: Path) -> None:
    result = mesh("validate", tmp_path / "nowhere")
    assert result.returncode == 1
    assert "no such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_preview_prints_the_tree_counts_and_outputs(tmp_path: Path) -> None:
    result = mesh("preview", "--stack", "prod", "--snapshot", tmp_path / "prod.json")
    assert result.returncode == 0, result.stderr
    assert "+ pulumi:pulumi:Stack" in result.stdout
    assert "fleet-mesh:gke:Cluster" in result.stdout and "[protect]" in result.stdout
    assert "By cluster:" in result.stdout and '"schemaVersion": 2' in result.stdout
    assert json.loads((tmp_path / "prod.json").read_text())["stack"] == "prod"


def test_preview_of_a_missing_stack_is_a_clean_error() -> None:
    result = mesh("preview", "--stack", "nosuch")
    assert result.returncode == 1
    assert "Pulumi.nosuch.yaml not found" in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------------------ no traceback, ever (issue 12, item 7)


def test_a_fleet_file_alone_is_an_error_not_an_empty_manifest() -> None:
    result = mesh("validate", "stacks/prod/fleet.yaml")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("stacks/prod/fleet.yaml:8: <document>: this is a fleet file without services")


def test_an_absolute_path_prints_as_given(tmp_path: Path) -> None:
    root = manifests.write(tmp_path / "stack", manifests.edited([("services/gamma.yaml", "name: grpc", "name: http")]))
    result = mesh("validate", root)  # cwd is the repository, not above the manifest
    assert result.stderr.startswith(f"{root}/services/gamma.yaml:8: ports[1].name: duplicate port name 'http'")


@pytest.mark.parametrize(("out", "message"), [
    ("file/inside", "error: cannot write {tmp}/file/inside: {tmp}/file is a file, not a folder; nothing was written."),
    ("/proc/fleet-mesh-out", "error: cannot write /proc/fleet-mesh-out: "),
], ids=["under-a-file", "in-proc"])
def test_render_to_an_unwritable_place_is_one_clear_error(tmp_path: Path, out: str, message: str) -> None:
    (tmp_path / "file").write_text("x")
    result = mesh("render", "--out", tmp_path / out if not out.startswith("/") else out)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(message.format(tmp=tmp_path))


def test_a_bad_revision_is_a_usage_error_and_writes_nothing(tmp_path: Path) -> None:
    result = mesh("render", "--out", tmp_path / "out", "--revision", "Bad_Rev!")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "argument --revision: 'Bad_Rev!' is not an Istio revision" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_closed_pipe_is_not_a_traceback(tmp_path: Path) -> None:
    errors = tmp_path / "stderr"
    command = f"'{sys.executable}' -m mesh graph --format json 2>'{errors}' | head -c 0"
    subprocess.run(["bash", "-c", command], cwd=PROJECT, check=True, timeout=120)
    assert errors.read_text() == ""


def test_rendered_files_are_readable_by_others(tmp_path: Path) -> None:
    result = mesh("render", "--out", tmp_path / "out")
    assert result.returncode == 0
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out/core-use1-a").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out/core-use1-a/00-namespace.yaml").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(("raised", "status", "message"), [
    (KeyboardInterrupt(), 130, "mesh: interrupted"),
    (RuntimeError("boom\nsecond line"), 1, "mesh: internal error (a bug in fleet-mesh, not a mistake in your input): "
     "RuntimeError: boom; run again with --debug for the traceback, and please report it"),
], ids=["ctrl-c", "bug"])
def test_an_interrupt_or_a_bug_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                           raised: BaseException, status: int, message: str) -> None:
    from mesh import cli

    def fail(args: object) -> int:
        raise raised

    monkeypatch.setattr(cli, "_validate", fail)
    assert cli.main(["validate"]) == status
    assert capsys.readouterr().err.strip().splitlines() == [message]


def test_debug_shows_the_traceback_of_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    from mesh import cli

    def fail(args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "_validate", fail)
    for argv in (["--debug", "validate"], ["validate", "--debug"]):
        with pytest.raises(RuntimeError, match="boom"):
            cli.main(argv)


def test_diff_exit_code_is_1_for_changes_and_2_for_errors(tmp_path: Path) -> None:
    base = manifests.write(tmp_path / "a", manifests.BASE)
    head = manifests.write(tmp_path / "b", manifests.edited([("services/beta.yaml", "timeout: 2s", "timeout: 3s")]))
    assert mesh("diff", base, base, "--no-pulumi", "--exit-code").returncode == 0
    assert mesh("diff", base, head, "--no-pulumi", "--exit-code").returncode == 1
    broken = manifests.write(tmp_path / "c", manifests.edited([("fleet.yaml", "tier: edge\n", "tier: x\n")]))
    result = mesh("diff", base, broken, "--no-pulumi", "--exit-code")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.endswith("error(s); nothing was written.\n")
    assert mesh("diff", "no-such-ref", base, "--no-pulumi", "--exit-code").returncode == 2
    assert "2 on errors" in mesh("diff", "--help").stdout


@pytest.mark.parametrize(("stack", "project", "message"), [
    ("config:\n  mesh:istioVersion: 1.31.1\n  mesh:releaseChanel: REGULAR\n", "name: fleet-mesh\n",
     "Pulumi.test.yaml:3: mesh:releaseChanel: unknown key; did you mean mesh:releaseChannel?"),
    ("config: [a\n", "name: fleet-mesh\n", "Pulumi.test.yaml:1: <document>: YAML syntax error at column 9: this '[' "
     "is never closed"),
    ("config: {}\n", "name: {fleet\n", "Pulumi.yaml:1: <document>: YAML syntax error"),
], ids=["unknown-key", "stack-yaml", "project-yaml"])
def test_preview_of_a_broken_stack_file_names_file_line_and_key(tmp_path: Path, stack: str, project: str,
                                                                 message: str) -> None:
    (tmp_path / "Pulumi.yaml").write_text(project)
    (tmp_path / "Pulumi.test.yaml").write_text(stack)
    result = mesh("preview", "--stack", "test", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(message)


def test_dev_py_names_the_python_it_needs() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    assert spec and spec.loader
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    assert dev.check_python((3, 11, 0)) is None
    assert dev.check_python((3, 9, 2)).startswith("fleet-mesh needs Python 3.11 or newer; this is Python 3.9 (")
    import ast

    ast.parse((ROOT / "dev.py").read_text(), feature_version=(3, 6))  # so that old Pythons can say so
