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

A plain scalar that YAML 1.1 and 1.2 read differently (`yes`, `0750`, `1:30`, …) is a fault
(`yaml_versions.py`); so are bytes that are not UTF-8 and characters YAML forbids (NUL, escape
codes), each reported at its line and column.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from stat import S_ISREG
from typing import Any

import yaml

from mesh.diagnostics import NodePath
from mesh.manifest.yaml_versions import ambiguity

try:
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml: slower, same results
    _BaseLoader = yaml.SafeLoader


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_NULL = "tag:yaml.org,2002:null"
_VALUE = "tag:yaml.org,2002:value"
_AMBIGUOUS = "!fleet-mesh/ambiguous"  # resolved tag of a plain scalar YAML 1.1 and 1.2 disagree on
_TAGS: dict[tuple[str, bool, bool], str] = {}
_TAGS_MAX = 1 << 17


class _StrictLoader(_BaseLoader):  # type: ignore[misc]
    """SafeLoader that records duplicate keys instead of keeping the last value silently."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []
        self.ambiguous: list[tuple[int, int, str]] = []  # (line, column, message)
        self._built: dict[int, Any] = {}
        self._building: set[int] = set()

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)  # type: ignore[no-any-return]
        key = (value, implicit[0], implicit[1])
        tag = _TAGS.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if tag == _VALUE:
                tag = _STR  # a plain `=`: a string, as in YAML 1.2 (PyYAML 1.1 cannot construct it)
            elif implicit[0] and ambiguity(value, tag):
                tag = _AMBIGUOUS
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

    def construct_ambiguous(self, node: yaml.ScalarNode) -> Any:
        """Record the fault; the value is YAML 1.1's, as PyYAML gives."""
        tag = super().resolve(yaml.ScalarNode, node.value, (True, False))
        mark = node.start_mark
        self.ambiguous.append((mark.line + 1, mark.column + 1, ambiguity(node.value, tag) or ""))
        return self.yaml_constructors[tag](self, node)

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


_StrictLoader.add_constructor(_AMBIGUOUS, _StrictLoader.construct_ambiguous)
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
        text = decode(path.read_bytes())
    except OSError as exc:
        return [], [YamlFault(1, f"cannot read file: {os_reason(exc)}", "unreadable")]
    except _DecodeFault as fault:
        return [], [fault.fault]
    return parse_text(text)


MAX_FLOW_DEPTH = 100


def _too_deep(text: str) -> YamlFault | None:
    """Flow collections nested past MAX_FLOW_DEPTH, found before parsing: how deep Python's own
    recursion may go depends on the process (another library may have raised the limit), so the
    answer must not. Only text with that many brackets at all is scanned."""
    if text.count("[") + text.count("{") <= MAX_FLOW_DEPTH:
        return None
    depth, line, quote = 0, 1, ""
    for char in text:
        if char == "\n":
            line += 1
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                return YamlFault(line, f"YAML nested more than {MAX_FLOW_DEPTH} levels deep; flatten it",
                                 "yaml-syntax")
        elif char in "]}":
            depth = max(0, depth - 1)
    return None


def parse_text(text: str) -> tuple[list[Any], list[YamlFault]]:
    """`parse` of text already read."""
    deep = _too_deep(text)
    if deep is not None:
        return [], [deep]
    loader = _StrictLoader(text)
    try:
        documents = []
        while loader.check_data():
            documents.append(loader.get_data())
    except yaml.reader.ReaderError as exc:
        return [], [_reader_fault(text, exc)]
    except yaml.MarkedYAMLError as exc:
        return [], [syntax_fault(exc)]
    except RecursionError:
        return [], [YamlFault(1, "YAML nested too deeply to read (hundreds of levels)", "yaml-syntax")]
    finally:
        loader.dispose()
    faults = [
        YamlFault(line, f"duplicate key {key!r} (YAML would keep only the last one)", "duplicate-key")
        for line, key in loader.duplicates
    ] + [YamlFault(line, f"column {column}: {message}", "yaml-ambiguous") for line, column, message in loader.ambiguous]
    return [doc for doc in documents if doc is not None], sorted(faults, key=lambda f: f.line)


def os_reason(exc: OSError) -> str:
    """`permission denied`, not `[Errno 13] Permission denied: '/abs/path'`."""
    return (exc.strerror or str(exc)).lower()


class _DecodeFault(Exception):
    def __init__(self, fault: YamlFault) -> None:
        self.fault = fault


def decode(data: bytes) -> str:
    """UTF-8 text, or `_DecodeFault` naming the line and column of the first byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start]
        raise _DecodeFault(YamlFault(line, f"column {column}: byte 0x{byte:02x} is not UTF-8 (is the file in Latin-1 "
                                           "or another legacy encoding?); save it as UTF-8", "encoding")) from None


_CHARACTERS = {0: "a NUL byte (U+0000)", 0x1B: "an escape character (U+001B, as in ANSI colour codes pasted "
               "from a terminal)", 0xFFFE: "U+FFFE (not a character; a byte-order mark of the wrong byte order?)",
               0xFFFF: "U+FFFF (not a character)"}


def _reader_fault(text: str, exc: yaml.reader.ReaderError) -> YamlFault:
    position = exc.position
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    code = ord(text[position]) if position < len(text) else exc.character
    what = _CHARACTERS.get(code, f"the control character U+{code:04X}")
    return YamlFault(line, f"column {column}: {what} is not allowed in YAML; remove it", "encoding")


_OPENERS = {"flow sequence": "'['", "flow mapping": "'{'", "quoted scalar": "quote"}


def syntax_fault(exc: yaml.MarkedYAMLError) -> YamlFault:
    """A syntax error at the line to edit: where an unclosed bracket or quote opened, else where
    the parser stopped."""
    problem, context = exc.problem or "", exc.context or ""
    opened = exc.context_mark
    kind = next((w for k, w in _OPENERS.items() if k in context), None)
    if opened is not None and kind and (problem.startswith("did not find expected") or "end of stream" in problem):
        return YamlFault(opened.line + 1, f"YAML syntax error at column {opened.column + 1}: this {kind} is never "
                                          "closed", "yaml-syntax")
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    column = f" at column {mark.column + 1}" if mark else ""
    return YamlFault(line, f"YAML syntax error{column}: {problem or exc}", "yaml-syntax")


@lru_cache(maxsize=64)
def _nodes(path: Path, mtime_ns: int, size: int) -> tuple[yaml.Node, ...]:
    del mtime_ns, size  # cache keys only: a rewritten file is composed again
    text = path.read_text(encoding="utf-8")
    # Empty documents compose to a null scalar; `parse` drops them, so document indices agree.
    return tuple(node for node in yaml.compose_all(text, Loader=_BaseLoader)
                 if node is not None and not (isinstance(node, yaml.ScalarNode) and node.tag == _NULL))


def line_of(path: Path, document: int, node_path: NodePath, key: bool = False) -> int:
    """1-based line of the node at `node_path`; the deepest existing ancestor if it is missing."""
    try:
        stat = path.stat()
        if not S_ISREG(stat.st_mode):
            return 1  # never open a FIFO or device: it could block forever
        nodes = _nodes(path, stat.st_mtime_ns, stat.st_size)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
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
