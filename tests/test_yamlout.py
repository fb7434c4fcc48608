"""The fast YAML writer produces exactly what PyYAML's dumper would, and refuses what it can't write."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh import yamlout
from mesh.compile import compile_fleet
from mesh.manifest import load

import stack_fixture
from strategies import Manifest, manifests


def pyyaml(documents: list[dict[str, object]]) -> str:
    return yaml.dump_all(documents, Dumper=yaml.SafeDumper, sort_keys=False, default_flow_style=False,
                         width=4096, explicit_start=True)


def test_example_stack_is_written_exactly_as_pyyaml_would() -> None:
    for objects in compile_fleet(load(stack_fixture.STACK).world).values():
        assert yamlout.dump_all(objects) == pyyaml(objects)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests())
def test_generated_fleets_are_written_exactly_as_pyyaml_would(manifest: Manifest) -> None:
    for objects in compile_fleet(manifest.world()).values():
        assert yamlout.dump_all(objects) == pyyaml(objects)


scalars = st.one_of(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
                    st.integers(-(2**40), 2**40), st.booleans(), st.none(),
                    st.sampled_from(["true", "on", "9090", "1e3", "", "- x", "a: b", "#x", "*", "./*.svc", "~"]))
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(st.dictionaries(st.text(st.characters(codec="ascii", exclude_categories=("Cc",)),
                                                    min_size=1, max_size=8), inner, max_size=4),
                            st.lists(st.dictionaries(st.sampled_from(["a", "b", "9"]), inner, max_size=3),
                                     max_size=3),
                            st.lists(scalars, max_size=3)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["k", "spec", "on", "x y"]), trees, max_size=4), max_size=3))
def test_arbitrary_json_like_trees_match_pyyaml(documents: list[dict[str, object]]) -> None:
    try:
        ours = yamlout.dump_all(documents)
    except ValueError:  # multi-line strings: refused rather than written differently
        return
    assert ours == pyyaml(documents)
    assert list(yaml.safe_load_all(ours)) == documents


def test_unsupported_values_are_refused() -> None:
    with pytest.raises(TypeError):
        yamlout.dump_all([{"x": 1.5}])
    with pytest.raises(ValueError):
        yamlout.dump_all([{"x": "two\nlines"}])
