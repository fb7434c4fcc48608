"""The stack outputs as an API: their JSON Schema, and a consumer program that needs only it."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mesh import preview
from mesh.outputs import json_schema

import stack_fixture

ROOT = Path(__file__).resolve().parent.parent
CONSUMER = ROOT / "examples" / "consumer"
FLEET = "acme/fleet-mesh/prod"


@pytest.fixture(scope="module")
def prod_outputs() -> dict[str, Any]:
    return preview.run(stack_fixture.project(), "prod").outputs


def test_the_vendored_schema_is_the_published_one() -> None:
    vendored = json.loads((CONSUMER / "stack-outputs.schema.json").read_text())
    assert vendored == json_schema(), ("regenerate with: .venv/bin/mesh schema outputs > "
                                       "examples/consumer/stack-outputs.schema.json")


def consume(tmp_path: Path, outputs: dict[str, Any]) -> preview.PreviewResult:
    for name in ("Pulumi.yaml", "__main__.py", "stack-outputs.schema.json"):
        shutil.copy(CONSUMER / name, tmp_path / name)
    config = {"fleet-mesh-consumer:fleet": FLEET}
    world = preview.OfflineWorld(stack_outputs={FLEET: outputs})
    return asyncio.run(preview._run(tmp_path / "__main__.py", "fleet-mesh-consumer", "dev", config, [], world))


def test_a_consumer_reads_the_prod_outputs_through_a_stack_reference(tmp_path: Path,
                                                                     prod_outputs: dict[str, Any]) -> None:
    result = consume(tmp_path, prod_outputs)
    [reference] = [r for r in result.registrations if r.type == "pulumi:pulumi:StackReference"]
    assert reference.inputs["name"] == FLEET
    assert sorted(result.outputs["eastWestAddresses"]) == sorted(prod_outputs["clusters"])
    assert result.outputs["fleetNatAddresses"] == prod_outputs["natAddresses"]


def test_a_consumer_refuses_outputs_that_break_the_schema(tmp_path: Path, prod_outputs: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(prod_outputs))
    del broken["clusters"]["core-use1-a"]["eastWest"]
    with pytest.raises(Exception, match="'eastWest' is a required property"):
        consume(tmp_path, broken)
