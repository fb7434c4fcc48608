"""Golden YAML per cluster for the example stack: the reviewed picture of what each cluster receives.

Regenerate with `REFRESH_GOLDEN=1 python3 dev.py test tests/test_golden.py`, then read the diff
like code: every changed line is a change to what a production cluster would apply.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from mesh import render
from mesh.compile import compile_fleet
from mesh.manifest import load

import stack_fixture

GOLDEN = Path(__file__).parent / "golden" / "prod"
REFRESH = os.environ.get("REFRESH_GOLDEN") == "1"
HOW_TO_REFRESH = ("if the change is intended: REFRESH_GOLDEN=1 python3 dev.py test tests/test_golden.py, then review "
                  "the diff of tests/golden/ (these are the fixture stack's, tests/fixtures/project)")


def _rendered() -> dict[str, str]:
    compiled = compile_fleet(load(stack_fixture.STACK).world)
    return {
        f"{cluster}/{name}": text
        for cluster, objects in compiled.items()
        for name, text in render.cluster_files(objects).items()
    }


def test_example_stack_matches_reviewed_golden_files() -> None:
    rendered = _rendered()
    if REFRESH:
        for old in GOLDEN.rglob("*.yaml"):
            old.unlink()
        for name, text in rendered.items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name).write_text(text)
    golden = {p.relative_to(GOLDEN).as_posix(): p.read_text() for p in sorted(GOLDEN.rglob("*.yaml"))}
    assert sorted(rendered) == sorted(golden), f"clusters or kinds differ from the golden tree; {HOW_TO_REFRESH}"
    changed = [name for name in rendered if rendered[name] != golden[name]]
    assert not changed, f"rendered output differs from golden files: {changed}; {HOW_TO_REFRESH}"


def test_golden_files_reparse_to_the_compiled_objects() -> None:
    """The YAML is a faithful serialisation: nothing lost or coerced (e.g. '0' vs 0, 'on')."""
    compiled = compile_fleet(load(stack_fixture.STACK).world)
    for cluster, objects in compiled.items():
        text = "".join(render.cluster_files(objects).values())
        assert list(yaml.safe_load_all(text)) == objects, cluster
