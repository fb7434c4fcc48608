"""The manifest parser returns exactly what PyYAML's CSafeLoader returns, plus faults: duplicate keys,
plain scalars YAML 1.1 and 1.2 read differently, bytes and characters YAML cannot hold, syntax errors
at the line to edit."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mesh.manifest.yaml_source import line_of, parse, parse_text
from mesh.manifest.yaml_versions import ambiguity, yaml12

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
    assert {f.reason for f in faults} <= {"yaml-ambiguous"}  # the values are PyYAML's all the same
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
    assert parse(path)[1][0].message == "YAML syntax error at column 4: found unhashable key"


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


# (text, line, message): at the line to edit, in words.
FAULTS = [
    ("a: 1\nb: [1, 2\nc: 3\n", 2, "YAML syntax error at column 4: this '[' is never closed"),
    ("a: 1\nb: {x: 1\nc: 3\n", 2, "YAML syntax error at column 4: this '{' is never closed"),
    ("a: 1\nb: [1, 2\n", 2, "YAML syntax error at column 4: this '[' is never closed"),
    ('a: 1\nb: "abc\nc: 3\n', 2, "YAML syntax error at column 4: this quote is never closed"),
    ("a: 1\nb: 'abc\n", 2, "YAML syntax error at column 4: this quote is never closed"),
    ("a:\n  - b\n c: d\n", 3, "YAML syntax error at column 2: did not find expected key"),
    ("a: 1\nb: \x00x\n", 2, "column 4: a NUL byte (U+0000) is not allowed in YAML; remove it"),
    ("a: 1\nb: \x1b[31mx\n", 2, "column 4: an escape character (U+001B, as in ANSI colour codes pasted from a "
     "terminal) is not allowed in YAML; remove it"),
    ("a: 1\n\nb: x\ufffe\n", 3, "column 5: U+FFFE (not a character; a byte-order mark of the wrong byte order?) "
     "is not allowed in YAML; remove it"),
    ("[" * 2000 + "]" * 2000, 1, "YAML nested more than 100 levels deep; flatten it"),
    ("[" * 900 + "]" * 900, 1, "YAML nested more than 100 levels deep; flatten it"),
    ("a: 1\nb: " + "{x: " * 101 + "1" + "}" * 101 + "\n", 2, "YAML nested more than 100 levels deep; flatten it"),
    ("a: 1\na: 2\n", 2, "duplicate key 'a' (YAML would keep only the last one)"),
]


@pytest.mark.parametrize(("text", "line", "message"), FAULTS, ids=[str(i) for i in range(len(FAULTS))])
def test_faults_are_reported_at_the_line_to_edit(text: str, line: int, message: str) -> None:
    _, faults = parse_text(text)
    assert [(f.line, f.message) for f in faults][:1] == [(line, message)]


def test_brackets_inside_quoted_strings_are_text_not_nesting() -> None:
    documents, faults = parse_text("a: '" + "[" * 200 + "'\nb: \"" + "{" * 200 + "\"\n")
    assert faults == [] and documents == [{"a": "[" * 200, "b": "{" * 200}]


def test_bytes_that_are_not_utf8_are_named_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: x\nowner: café\n".encode("latin-1"))
    assert [(f.line, f.message, f.reason) for f in parse(path)[1]] == [
        (2, "column 11: byte 0xe9 is not UTF-8 (is the file in Latin-1 or another legacy encoding?); save it as "
            "UTF-8", "encoding")]


def test_an_unreadable_file_says_why_in_words(tmp_path: Path) -> None:
    assert parse(tmp_path / "absent.yaml")[1][0].message == "cannot read file: no such file or directory"


# Plain scalars both versions read alike are accepted; the others are faults with a hint.
SAME = ["true", "false", "True", "FALSE", "8080", "0", "-3", "0x1f", "1.5", ".5", ".inf", "-.inf", ".nan", "~", "null",
        "", "1.0e+3", "abc", "us-east1", "10.0.0.0/20", "1.31.1", "2s", "="]
DIFFERENT = [
    ("yes", "'yes' is the boolean true in YAML 1.1 but a string in YAML 1.2; write true for the boolean, or quote "
     "it ('yes') for the text"),
    ("off", "'off' is the boolean false in YAML 1.1 but a string in YAML 1.2"),
    ("On", "'On' is the boolean true in YAML 1.1"),
    ("0750", "'0750' is the number 488 in YAML 1.1 but the number 750 in YAML 1.2; write the number plainly "
     "(e.g. 750), or quote it ('0750') for the text"),
    ("1:30", "'1:30' is the number 90 in YAML 1.1 but a string in YAML 1.2"),
    ("1_000", "'1_000' is the number 1000 in YAML 1.1 but a string in YAML 1.2"),
    ("0b101", "'0b101' is the number 5 in YAML 1.1 but a string in YAML 1.2"),
    ("1e3", "'1e3' is a string in YAML 1.1 but the number 1000 in YAML 1.2"),
    ("0o17", "'0o17' is a string in YAML 1.1 but the number 15 in YAML 1.2"),
    ("2024-01-02", "'2024-01-02' is a date in YAML 1.1 but a string in YAML 1.2; quote it ('2024-01-02')"),
]


@pytest.mark.parametrize("value", SAME)
def test_scalars_both_yaml_versions_agree_on_are_accepted(value: str) -> None:
    _, faults = parse_text(f"a: {value}\n")
    assert faults == []


@pytest.mark.parametrize(("value", "message"), DIFFERENT, ids=[v for v, _ in DIFFERENT])
def test_scalars_yaml_1_1_and_1_2_read_differently_are_faults_with_a_hint(value: str, message: str) -> None:
    for text, line, column in ((f"a: {value}\n", 1, 4), (f"x: 1\nb: [{value}]\n", 2, 5), (f"{value}: 1\n", 1, 1)):
        _, faults = parse_text(text)
        assert [(f.line, f.reason) for f in faults] == [(line, "yaml-ambiguous")], text
        assert faults[0].message.startswith(f"column {column}: {message}")
    assert parse_text(f"a: '{value}'\n") == ([{"a": value}], [])  # quoted: a string to both


def test_yaml12_reads_the_core_schema() -> None:
    assert [yaml12(v) for v in ("0o17", "0x1f", "1e3", "yes", "~", "True")] == [15, 31, 1000.0, "yes", None, True]
    assert ambiguity("8080", "tag:yaml.org,2002:int") is None


def test_line_of_counts_documents_as_parse_does(tmp_path: Path) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text("---\n# nothing\n---\nname: x\nports: [1]\n")
    documents, _ = parse(path)
    assert documents == [{"name": "x", "ports": [1]}]
    assert line_of(path, 0, ("ports",)) == 5


def test_line_of_walks_node_paths_and_stops_at_the_deepest_existing_node(tmp_path: Path) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text("name: x\nports:\n  - {name: a, number: 1}\n  - name: b\n    number: 2\n---\nother: 1\n")
    assert line_of(path, 0, ("ports", 1, "number")) == 5
    assert line_of(path, 0, ("ports", 1, "missing")) == 4
    assert line_of(path, 0, ("ports", 0, "name"), key=True) == 3
    assert line_of(path, 1, ("other",)) == 7
