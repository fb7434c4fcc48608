"""Reading manifest YAML strictly, and finding the line of any node afterwards.

Files are parsed with libyaml's C parser (PyYAML's `CSafeLoader`) into plain Python values, with no
position bookkeeping: validating 5,000 service files must cost about what parsing them costs. When a
problem is reported, the file is composed again into nodes (which carry marks) and the node path is
walked to its line. Duplicate mapping keys are errors: PyYAML would silently keep the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from mesh.diagnostics import NodePath

try:
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml: slower, same results
    _BaseLoader = yaml.SafeLoader


class _StrictLoader(_BaseLoader):  # type: ignore[misc]
    """SafeLoader that records duplicate keys instead of keeping the last value silently."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        if len(mapping) != len(node.value):  # only then can a key have been repeated
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.value in seen:
                    self.duplicates.append((key_node.start_mark.line + 1, str(key_node.value)))
                seen.add(key_node.value)
        return mapping


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping
)


@dataclass(frozen=True)
class YamlFault:
    """A file that could not be read as YAML at all, or had duplicate keys."""

    line: int
    message: str
    reason: str


def parse(path: Path) -> tuple[list[Any], list[YamlFault]]:
    """All documents of a file as plain values, or the faults that make it unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [YamlFault(1, f"cannot read file: {exc}", "unreadable")]
    loader = _StrictLoader(text)
    try:
        documents = []
        while loader.check_data():
            documents.append(loader.get_data())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        detail = exc.problem or str(exc)
        return [], [YamlFault(line, f"YAML syntax error: {detail}", "yaml-syntax")]
    finally:
        loader.dispose()
    faults = [
        YamlFault(line, f"duplicate key {key!r} (YAML would keep only the last one)", "duplicate-key")
        for line, key in loader.duplicates
    ]
    return [doc for doc in documents if doc is not None], faults


@lru_cache(maxsize=64)
def _nodes(path: Path, mtime_ns: int, size: int) -> tuple[yaml.Node, ...]:
    del mtime_ns, size  # cache keys only: a rewritten file is composed again
    text = path.read_text(encoding="utf-8")
    return tuple(node for node in yaml.compose_all(text, Loader=_BaseLoader) if node is not None)


def line_of(path: Path, document: int, node_path: NodePath, key: bool = False) -> int:
    """1-based line of the node at `node_path`; the deepest existing ancestor if it is missing."""
    try:
        stat = path.stat()
        nodes = _nodes(path, stat.st_mtime_ns, stat.st_size)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return 1
    if document >= len(nodes):
        return 1
    node: yaml.Node = nodes[document]
    line = node.start_mark.line + 1
    for part in node_path:
        child = _child(node, part, key and part == node_path[-1])
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _child(node: yaml.Node, part: str | int, want_key: bool) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if str(key_node.value) == str(part):
                found: yaml.Node = key_node if want_key else value_node
                return found
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        child: yaml.Node = node.value[part]
        return child
    return None
