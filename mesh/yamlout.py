"""Block-style YAML for compiled objects, byte-identical to PyYAML's, about ten times faster.

PyYAML's dumper spends most of its time in Python-level representation and event processing,
per node. Compiled objects are plain JSON-like trees (dict, list, str, int, bool), so the layout is
written here directly; each distinct string's scalar form (plain, or quoted when YAML would read it
as something else, e.g. '9090' or 'true') is still decided by PyYAML itself, once, and cached.
Tests compare the output with `yaml.dump_all` over every compiled fleet they build.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import yaml

try:
    _Dumper: type = yaml.CSafeDumper
except AttributeError:  # PyYAML without libyaml
    _Dumper = yaml.SafeDumper


@lru_cache(maxsize=1 << 18)
def _scalar(text: str) -> str:
    rendered: str = yaml.dump(text, Dumper=_Dumper, width=4096, explicit_end=False)
    lines = rendered.splitlines()
    if len(lines) > 1 and lines[1:] != ["..."]:
        raise ValueError(f"multi-line string cannot be written as a simple scalar: {text!r}")
    return lines[0]


def _atom(value: Any) -> str:
    if isinstance(value, str):
        return _scalar(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to YAML: {value!r}")


def _mapping(value: Mapping[str, Any], indent: str, out: list[str], first_prefix: str) -> None:
    """Write `value` as block mapping lines; the first line starts with `first_prefix`."""
    prefix = first_prefix
    for key, item in value.items():
        head = f"{prefix}{_scalar(key)}:"
        prefix = indent
        if isinstance(item, dict) and item:
            out.append(head)
            _mapping(item, indent + "  ", out, indent + "  ")
        elif isinstance(item, list) and item:
            out.append(head)
            _sequence(item, indent, out)
        elif isinstance(item, dict):
            out.append(head + " {}")
        elif isinstance(item, list):
            out.append(head + " []")
        else:
            out.append(f"{head} {_atom(item)}")


def _sequence(value: list[Any], indent: str, out: list[str]) -> None:
    # PyYAML writes a sequence inside a mapping at the mapping's own indentation.
    for item in value:
        if isinstance(item, dict) and item:
            _mapping(item, indent + "  ", out, indent + "- ")
        elif isinstance(item, list) and item:
            raise TypeError("nested sequences are not emitted by the compiler")
        elif isinstance(item, dict):
            out.append(f"{indent}- {{}}")
        elif isinstance(item, list):
            out.append(f"{indent}- []")
        else:
            out.append(f"{indent}- {_atom(item)}")


def dump_all(documents: Iterable[Mapping[str, Any]]) -> str:
    """`---`-separated block YAML of every document, keys in their given order."""
    out: list[str] = []
    for document in documents:
        if document:
            out.append("---")
            _mapping(document, "", out, "")
        else:
            out.append("--- {}")
    out.append("")
    return "\n".join(out)
