"""Every object the compiler emits is accepted by Istio's own CRD schemas (and CEL rules).

Runs on the example stack and on generated fleets. Unknown fields fail, as the API server's
structural-schema pruning would otherwise silently drop them.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from mesh.compile import CompileOptions, compile_fleet
from mesh.manifest import load

import stack_fixture
from istio_schema import assert_valid
from strategies import Manifest, manifests


def test_example_stack_objects_match_istio_schemas() -> None:
    compiled = compile_fleet(load(stack_fixture.STACK).world)
    assert_valid(obj for objects in compiled.values() for obj in objects)


def test_revisioned_namespaces_match_too() -> None:
    compiled = compile_fleet(load(stack_fixture.STACK).world, CompileOptions(revision="1-31-1"))
    assert_valid(obj for objects in compiled.values() for obj in objects if obj["kind"] == "Namespace")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests())
def test_generated_fleets_objects_match_istio_schemas(manifest: Manifest) -> None:
    compiled = compile_fleet(manifest.world())
    assert_valid(obj for objects in compiled.values() for obj in objects)
