"""The example stack loads and compiles: the cheapest signal that the pipeline is wired."""

from mesh.compile import compile_fleet
from mesh.manifest import load


def test_example_stack_compiles_for_every_cluster() -> None:
    world = load("stacks/prod").world
    compiled = compile_fleet(world)
    assert set(compiled) == set(world.clusters)
    assert all(compiled[name] for name in compiled)
