"""The example stack users edit (stacks/prod) validates, compiles and passes its own checks.

The only test that reads it: everything else runs on the suite's own copy (tests/fixtures/project),
so adding a cluster or a service to the example changes no other test.
"""

from pathlib import Path

from mesh.compile import compile_fleet
from mesh.manifest import load
from mesh.verify import verify

EXAMPLE = Path(__file__).resolve().parent.parent / "stacks" / "prod"


def test_example_stack_compiles_for_every_cluster_and_verifies() -> None:
    world = load(EXAMPLE).world
    compiled = compile_fleet(world)
    assert set(compiled) == set(world.clusters)
    assert all(compiled[name] for name in compiled)
    assert verify(world, compiled) == []
