"""The CI workflows run commands that exist, on stacks that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mesh.cli import _parser

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))
DEV_COMMANDS = {"preview", "render", "test", "setup"}


def _mesh_commands() -> set[str]:
    actions = [a for a in _parser()._actions if a.dest == "command"]
    return set(actions[0].choices)  # type: ignore[arg-type]


def _steps(workflow: dict[str, object]) -> list[dict[str, object]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_run_steps_call_existing_commands(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    assert workflow.get("on", workflow.get(True)), "a trigger"  # YAML 1.1 reads `on` as true
    runs = [str(step["run"]) for step in _steps(workflow) if "run" in step]
    assert runs
    for script in runs:
        for command in re.findall(r"dev\.py (\w+)", script):
            assert command in DEV_COMMANDS, command
        for command in re.findall(r"(?:\.venv/bin/)?mesh (\w+)", script):
            assert command in _mesh_commands(), command


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_matrix_stacks_have_stack_files(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    for job in workflow["jobs"].values():
        for stack in job.get("strategy", {}).get("matrix", {}).get("stack", []):
            assert (ROOT / f"Pulumi.{stack}.yaml").is_file(), stack


def test_pull_requests_get_the_markdown_diff_and_a_pulumi_preview() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/pull-request.yml").read_text())
    scripts = " ".join(str(s.get("run", "")) for s in _steps(workflow))
    assert "mesh diff" in scripts and "--format markdown" in scripts
    uses = {str(s.get("uses", "")).split("@")[0]: s for s in _steps(workflow)}
    assert uses["pulumi/actions"]["with"]["command"] == "preview"  # type: ignore[index]
    assert uses["pulumi/actions"]["with"]["comment-on-pr"] is True  # type: ignore[index]


def test_deploys_wait_for_environment_approval() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())
    assert all(job.get("environment") == "production" for job in workflow["jobs"].values())
