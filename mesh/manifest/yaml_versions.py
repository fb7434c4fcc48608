"""Plain scalars that YAML 1.1 and YAML 1.2 read differently are refused, with a hint.

PyYAML reads YAML 1.1: `yes`, `on` and `off` are booleans, `0750` is octal 488, `1:30` is 90 (base
60), `1_000` is 1000 and `2024-01-02` is a date. YAML 1.2 — what editors, language servers, Go's
yaml.v3 and most other tools read — takes all of these as strings or decimal numbers, and reads `1e3`
and `0o17` as numbers where YAML 1.1 sees strings. A manifest means one thing to every reader, so a
plain scalar is accepted only where both versions agree on its type and value; `true`, `false`,
`8080`, `0x1f`, `1.5`, `.inf` and `null` mean the same in both. Quoting a scalar makes it a string
in both.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

import yaml

_BOOL_12 = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULL_12 = {"", "~", "null", "Null", "NULL"}
_INT_12 = re.compile(r"[-+]?[0-9]+")
_OCT_12 = re.compile(r"0o[0-7]+")
_HEX_12 = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT_12 = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF_12 = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN_12 = re.compile(r"\.(nan|NaN|NAN)")
_STR = "tag:yaml.org,2002:str"


def yaml12(value: str) -> Any:
    """The value of a plain scalar under YAML 1.2's core schema."""
    if value in _NULL_12:
        return None
    if value in _BOOL_12:
        return _BOOL_12[value]
    if _INT_12.fullmatch(value):
        return int(value, 10)
    if _OCT_12.fullmatch(value):
        return int(value[2:], 8)
    if _HEX_12.fullmatch(value):
        return int(value[2:], 16)
    if _FLOAT_12.fullmatch(value):
        return float(value)
    if _INF_12.fullmatch(value):
        return -math.inf if value.startswith("-") else math.inf
    if _NAN_12.fullmatch(value):
        return math.nan
    return value


def _yaml11(value: str, tag: str) -> Any:
    if tag == _STR:
        return value
    try:
        return yaml.load(value, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return value


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    return bool(a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)))


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value:g}" if isinstance(value, float) else f"the number {value}"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


@lru_cache(maxsize=4096)
def ambiguity(value: str, tag11: str) -> str | None:
    """Why the plain scalar `value` (tag `tag11` under YAML 1.1) is ambiguous, or None."""
    old, new = _yaml11(value, tag11), yaml12(value)
    if _same(old, new):
        return None
    said = _describe(old)
    if isinstance(old, bool):
        fix = f"write {str(old).lower()} for the boolean, or quote it ('{value}') for the text"
    elif isinstance(old, int | float) or isinstance(new, int | float):
        number = new if isinstance(new, int | float) and not isinstance(new, bool) else old
        fix = f"write the number plainly (e.g. {number:g}), or quote it ('{value}') for the text"
    else:
        fix = f"quote it ('{value}')"
    return f"{value!r} is {said} in YAML 1.1 but {_describe(new)} in YAML 1.2; {fix}"
