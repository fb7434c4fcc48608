"""Reading manifest YAML strictly, and finding the line of any node afterwards.

Files are parsed with libyaml's C parser (PyYAML's `CSafeLoader`) into plain Python values, with no
position bookkeeping: validating 5,000 service files must cost about what parsing them costs. When a
problem is reported, the file is composed again into nodes (which carry marks) and the node path is
walked to its line. Duplicate mapping keys are errors: PyYAML would silently keep the last one.

The values are exactly what `yaml.load(..., Loader=CSafeLoader)` returns (tests compare the two),
built faster: strings, mappings and sequences — nearly everything in a manifest — are constructed
directly from the node tree, and tag resolution of plain scalars, a pure function of the text, is
cached across files. Every other node (numbers, booleans, null, timestamps, merge keys, explicit
tags) goes through PyYAML's own constructor.
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


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_TAGS: dict[tuple[str, bool, bool], str] = {}
_TAGS_MAX = 1 << 17


class _StrictLoader(_BaseLoader):  # type: ignore[misc]
    """SafeLoader that records duplicate keys instead of keeping the last value silently."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []
        self._built: dict[int, Any] = {}
        self._building: set[int] = set()

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)  # type: ignore[no-any-return]
        key = (value, implicit[0], implicit[1])
        tag = _TAGS.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(_TAGS) < _TAGS_MAX:
                _TAGS[key] = tag
        return tag

    def construct_document(self, node: yaml.Node) -> Any:
        try:
            data = self._build(node)
            # Slow-path constructors may defer work to generators, as in PyYAML's own loop.
            pending: list[Any] = getattr(self, "state_generators", [])
            while pending:
                generators, pending = pending, []
                self.state_generators: list[Any] = pending
                for generator in generators:
                    for _ in generator:
                        pass
            return data
        finally:
            self._built, self._building = {}, set()
            self.constructed_objects: dict[Any, Any] = {}
            self.recursive_objects: dict[Any, Any] = {}
            self.deep_construct = False

    def _build(self, node: yaml.Node) -> Any:
        tag, kind = node.tag, type(node)
        if kind is yaml.ScalarNode and tag == _STR:
            return node.value
        if (kind is yaml.MappingNode and tag == _MAP) or (kind is yaml.SequenceNode and tag == _SEQ):
            known = self._built.get(id(node), _MISSING)
            if known is not _MISSING:
                return known  # an alias: the same object, as PyYAML gives
            if id(node) in self._building:
                return self.construct_object(node, deep=True)  # recursive: PyYAML's own handling
            self._building.add(id(node))
            built = self._mapping(node) if isinstance(node, yaml.MappingNode) else [self._build(n) for n in node.value]
            self._building.discard(id(node))
            self._built[id(node)] = built
            return built
        return self.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode) -> dict[Any, Any]:
        if any(key_node.tag == _MERGE for key_node, _ in node.value):
            merged: dict[Any, Any] = self.construct_mapping(node, deep=True)  # merge keys: PyYAML's rules
            return merged
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self._build(key_node)
            try:
                if key in result:
                    self.duplicates.append((key_node.start_mark.line + 1, str(key)))
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
                ) from None
            result[key] = self._build(value_node)
        return result


_MISSING = object()


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
