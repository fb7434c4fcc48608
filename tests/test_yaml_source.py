"""The manifest parser returns exactly what PyYAML's CSafeLoader returns, plus duplicate-key faults."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mesh.manifest.yaml_source import line_of, parse

TRICKY = [
    "a: 1\nb: 1.5\nc: true\nd: ~\ne: 2024-01-02\nf: 0o17\ng: 0x1f\nh: .inf\ni: yes\nj: '9090'\nk: !!str 12\n",
    "base: &b {x: 1, y: [1, 2]}\nuse: *b\nmerged:\n  <<: *b\n  y: 3\n",
    "- &x [1, 2]\n- *x\n- {? a : c}\n",
    "--- a\n--- {k: v}\n---\n- x\n...\n",
    "key: |\n  multi\n  line\nfolded: >\n  one\n  two\nempty:\nq: \"esc\\tape\"\n",
    "set: !!set {a, b}\nbinary: !!binary aGVsbG8=\nomap: !!omap [a: 1, b: 2]\n",
    "1: int key\n2.5: float key\nnull: null key\nfalse: bool key\n",
]


def _both(tmp_path: Path, text: str) -> tuple[list[object], list[object]]:
    path = tmp_path / "doc.yaml"
    path.write_text(text)
    ours, faults = parse(path)
    assert faults == []
    theirs = [d for d in yaml.load_all(text, Loader=yaml.CSafeLoader) if d is not None]
    return ours, theirs


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_yaml_parses_exactly_as_pyyaml(tmp_path: Path, text: str) -> None:
    ours, theirs = _both(tmp_path, text)
    assert ours == theirs
    assert [type(x) for x in ours] == [type(x) for x in theirs]


def test_unhashable_keys_fail_as_in_pyyaml(tmp_path: Path) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text("{? [a, b] : c}\n")
    with pytest.raises(yaml.YAMLError):
        yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
    assert parse(path)[1][0].message == "YAML syntax error: found unhashable key"


def test_aliases_share_one_object_as_in_pyyaml(tmp_path: Path) -> None:
    ours, _ = _both(tmp_path, "a: &x {k: [1]}\nb: *x\n")
    assert ours[0]["a"] is ours[0]["b"]


json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10),
              st.sampled_from(["yes", "No", "on", "0x10", "1_000", "1e3", "2001-12-14", "~", "null", "=", "<<"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(json_like, st.booleans())
def test_any_dumped_structure_parses_exactly_as_pyyaml(tmp_path_factory: pytest.TempPathFactory,
                                                        value: object, flow: bool) -> None:
    text = yaml.safe_dump(value, default_flow_style=flow)
    ours, theirs = _both(tmp_path_factory.mktemp("y"), text)
    assert ours == theirs


def test_duplicate_keys_are_reported_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    _, faults = parse(path)
    assert [(f.line, f.reason) for f in faults] == [(4, "duplicate-key"), (5, "duplicate-key")]


def test_syntax_errors_carry_the_parser_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: [1, 2\nc: 3\n")
    documents, faults = parse(path)
    assert documents == [] and faults[0].reason == "yaml-syntax" and faults[0].line == 3


def test_line_of_walks_node_paths_and_stops_at_the_deepest_existing_node(tmp_path: Path) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text("name: x\nports:\n  - {name: a, number: 1}\n  - name: b\n    number: 2\n---\nother: 1\n")
    assert line_of(path, 0, ("ports", 1, "number")) == 5
    assert line_of(path, 0, ("ports", 1, "missing")) == 4
    assert line_of(path, 0, ("ports", 0, "name"), key=True) == 3
    assert line_of(path, 1, ("other",)) == 7
