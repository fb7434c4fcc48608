"""Pydantic's validation errors in the manifest's own words, at the YAML node to edit.

Pydantic names validator wrappers in its error locations (`function-before[...]`, `[key]`) and
speaks of "Input should be a valid integer"; a person editing YAML wants `ports[0].number: must be
a number, not the string '8080': remove the quotes`. "Did you mean" suggests the fields of the
mapping where the unknown field is (never the unknown name itself), the camelCase form of a
snake_case name, or the mapping the field belongs under.
"""

from __future__ import annotations

import datetime
import difflib
import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from mesh.manifest import schema

NodePath = tuple[str | int, ...]

PATTERN_HINTS = {
    schema.DNS_LABEL: "a DNS label: lower-case letters, digits and '-', starting and ending with a "
    "letter or digit",
    schema.CLUSTER_NAME: "a GKE cluster name: lower-case letters, digits and '-', starting with a "
    "letter, at most 40 characters",
    schema.GCP_PROJECT: "a GCP project id: 6-30 lower-case letters, digits and '-', starting with a "
    "letter",
    schema.GCP_REGION: "a GCP region such as us-east1",
    schema.DURATION: "a duration such as 500ms, 2s, 1m or 1h",
    schema.DNS_NAME: "a valid DNS name (lower-case labels of letters, digits and '-', separated by dots, "
    "at least two labels)",
    schema.IPV4: "an IPv4 address such as 10.0.0.1",
    schema.CIDR: "an IPv4 CIDR block with its prefix length, such as 10.0.0.0/20",
    schema.IPV4_OR_CIDR: "an IPv4 address or CIDR block, such as 10.0.0.1 or 10.0.0.0/20",
    schema.LABEL_VALUE: "a Kubernetes label value: at most 63 letters, digits, '-', '_' or '.', starting "
    "and ending with a letter or digit",
}
_MODELS = {name for name, value in vars(schema).items() if isinstance(value, type) and issubclass(value, BaseModel)}


def describe(value: Any) -> str:
    """A value as a person would name it: `the string '8080'`, `the number 8080.0`."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= 60 else "a long string"
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, list):
        return "a list"
    return "a mapping" if isinstance(value, dict) else f"a {type(value).__name__}"


def yaml_path(document: Any, loc: tuple[Any, ...]) -> tuple[NodePath, bool]:
    """The YAML node path of a pydantic location, and whether it names a mapping key."""
    out: list[str | int] = []
    node, key = document, False
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part if isinstance(part, str | int) else str(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif part == "[key]":
            key = True
        elif isinstance(part, str) and ("[" in part or part in _MODELS):
            continue  # a validator wrapper or union member: not in the YAML
        else:
            out.append(part)
            node = None
    return tuple(out), key


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            structured = [a for a in members if _is_model(a) or typing.get_origin(_strip(a)) in (list, dict)]
            annotation = (structured or members)[0]
        else:
            return annotation


def _strip(annotation: Any) -> Any:
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def fields_of(model: type[BaseModel]) -> dict[str, Any]:
    return {field.alias or name: field.annotation for name, field in model.model_fields.items()}


def model_at(root: Any, path: NodePath) -> type[BaseModel] | None:
    """The model of the mapping at `path` under the type `root`, if there is one."""
    annotation = root
    for part in path:
        annotation = _unwrap(annotation)
        if _is_model(annotation):
            fields = fields_of(annotation)
            if part not in fields:
                return None
            annotation = fields[part]
        elif typing.get_origin(annotation) is list:
            annotation = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return None
    annotation = _unwrap(annotation)
    return annotation if _is_model(annotation) else None


def unknown_field_hint(name: str, model: type[BaseModel] | None) -> str:
    if model is None:
        return ""
    fields = fields_of(model)
    camel = to_camel(name)
    if "_" in name and camel in fields:
        return f"; did you mean {camel!r}? (field names are camelCase)"
    close = [c for c in difflib.get_close_matches(name, fields, n=1) if c != name]
    if close:
        return f"; did you mean {close[0]!r}?"
    home = [field for field, annotation in fields.items()
            if (inner := model_at(annotation, ())) is not None and name in fields_of(inner)]
    if home:
        return f"; it belongs under {home[0]!r}"
    return f"; fields here: {', '.join(sorted(fields))}" if len(fields) <= 12 else ""


def message(error: Any, model: type[BaseModel] | None, hints: dict[str, str] | None = None) -> str:
    """The words for one pydantic error (its location is handled by the caller)."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        return f"required field {error['loc'][-1]!r} is missing"
    if kind == "extra_forbidden":
        name = str(error["loc"][-1])
        return f"unknown field {name!r}{unknown_field_hint(name, model)}"
    if kind == "string_pattern_mismatch":
        hint = {**PATTERN_HINTS, **(hints or {})}.get(ctx["pattern"], "in the expected format")
        return f"{value!r} is not {hint}"
    for text in _specific(kind, value, ctx):
        return text
    words = str(error["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
    if kind != "value_error" and not isinstance(value, dict | list):
        words = f"{words} (got {describe(value)})"
    return words


def _specific(kind: str, value: Any, ctx: dict[str, Any]) -> Iterator[str]:
    if kind in ("int_type", "int_parsing", "int_from_float"):
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            yield f"must be a number, not the string {value!r}: remove the quotes"
        elif isinstance(value, float) and value.is_integer():
            yield f"must be a whole number, not {value!r}: write {int(value)}"
        yield f"must be a whole number (got {describe(value)})"
    if kind in ("bool_type", "bool_parsing"):
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off", "y", "n"):
            meant = "true" if value.lower() in ("true", "yes", "on", "y") else "false"
            yield f"must be true or false, not the string {value!r}: write {meant} without quotes"
        yield f"must be true or false (got {describe(value)})"
    if kind == "string_type":
        if isinstance(value, bool | int | float):
            text = str(value).lower() if isinstance(value, bool) else str(value)
            yield f"must be a string (got {describe(value)}); if you mean the text, quote it: '{text}'"
        yield f"must be a string (got {describe(value)})"
    if kind == "list_type":
        yield f"must be a list (got {describe(value)})"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        yield f"must be a mapping of fields (got {describe(value)})"
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length" if kind == "too_short" else "max_length")
        many = "entry" if bound == 1 else "entries"
        yield f"must list at {'least' if kind == 'too_short' else 'most'} {bound} {many}"
    if kind == "string_too_long":
        yield f"is longer than {ctx.get('max_length')} characters"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = ctx.get("ge", ctx.get("le", ctx.get("gt", ctx.get("lt"))))
        words = {"greater_than_equal": "at least", "less_than_equal": "at most", "greater_than": "more than",
                 "less_than": "less than"}[kind]
        yield f"must be {words} {bound} (got {value!r})"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        close = [e.strip("'") for e in expected.replace(" or ", ", ").split(", ")
                 if isinstance(value, str) and e.strip("'").lower() == value.lower()]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        yield f"must be {expected} (got {describe(value)}){hint}"
