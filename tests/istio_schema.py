"""Check generated Istio and Kubernetes objects against the schemas the API server enforces.

Tests hand this module plain dicts (`{"apiVersion": ..., "kind": ..., "metadata": ..., "spec": ...}`) and get
back every problem at once, each as `"Kind/namespace/name: $.spec.path: message"` (`"Kind/name: ..."` for
cluster-scoped objects). Public API: `validate_object(obj) -> list[str]` (empty = valid),
`assert_valid(objs)` (AssertionError listing every problem), `schema_source()` (which backend is active).

Which schemas
-------------
1. `crd:<path>` — Istio's generated `crd-all.gen.yaml`, the file the API server itself validates against
   (OpenAPI v3 structural schemas plus CEL `x-kubernetes-validations`). The path comes from
   `FLEET_MESH_ISTIO_CRDS`; when that variable is unset, `../shared/istio/crd-all.gen.yaml` beside the
   repository is used if it exists (developer and CI machines). A variable naming a missing file falls back
   (below) with a `UserWarning`, so a mistyped CI path is visible rather than silently weaker.
2. `cloudcoil-models-istio <version>` — otherwise, the pydantic models of the published
   `cloudcoil.models.istio` package (generated from Istio 1.24 CRDs).

Only `v1/Namespace` among core kinds is known (name, labels, annotations); any other apiVersion/kind, or a
version the CRDs do not serve, is a problem: emitting an unknown kind should be a decision, not an accident.

What the CRD backend checks, and how it bends jsonschema to Kubernetes semantics
--------------------------------------------------------------------------------
- `spec` against `openAPIV3Schema.properties.spec`; a missing `spec` only where the CRD requires it
  (ServiceEntry, WorkloadEntry, WorkloadGroup).
- Unknown fields: the API server prunes (or, with strict field validation, rejects) fields a structural
  schema does not declare; jsonschema allows them. Every structural object node without
  `additionalProperties` or `x-kubernetes-preserve-unknown-fields` is therefore closed. Nodes inside
  `oneOf`/`anyOf`/`allOf`/`not` are value checks, not structure, and stay open.
- `nullable: true` admits null; elsewhere null is a problem (the API server would drop it; a generator
  emitting null has a bug). Integers are ints, never floats or bools. `x-kubernetes-int-or-string` accepts
  both. Formats int32/int64/uint32/uint64 are range-checked and `byte` must be base64; other formats
  (double, date-time — status only) are ignored.
- `oneOf`/`anyOf` are kept: Istio expresses "at most one of these fields" as
  `oneOf: [{not: {anyOf: [{required: [a]}, ...]}}, {required: [a]}, ...]`, reported as such.
- `x-kubernetes-list-type: map` keys must be unique (ServiceEntry `ports` by `name`); `set` items unique.
- CEL rules at every schema level (objects, fields, each list item, each map value) run with celpy, `self`
  bound to the value at that node. Kubernetes library functions the rules call are implemented below:
  `duration()` with Go's grammar (celpy's own accepts `1d` and rejects `0`), `substring()`, and
  `isURL()`/`url()`/`getScheme()` — an approximation of Go's `url.ParseRequestURI`, used only by
  WasmPlugin, TrafficExtension and RequestAuthentication. A rule that cannot be evaluated is reported as
  a problem, never passed. `UNEVALUATED_RULES` is the explicit allow-list of rules not run; it is empty:
  every rule in Istio's CRDs (1.31) is evaluated. Loading a CRD file whose rules call a function not
  implemented here raises, until the function is implemented or the rule is allow-listed with a reason.
- CEL rules are not run on a value whose subtree has a type or required-field error: they would fail to
  evaluate rather than judge, and the schema problem is already reported. After value errors (enum,
  bounds, unknown fields, duplicates) rules still run, so one object shows all its independent problems.
- `metadata` (both backends): `name` a DNS-1123 subdomain (≤ 253; a Namespace's a DNS-1123 label ≤ 63),
  `namespace` a DNS-1123 label, required for Istio kinds and absent on a Namespace; labels and
  annotations string→string with valid keys and label values; no fields ObjectMeta does not have.
  Top-level fields beyond apiVersion/kind/metadata/spec (e.g. `status`) are problems.

Fallback limits (cloudcoil-models-istio)
----------------------------------------
Its models ignore unknown fields (pydantic's default `extra="ignore"`), so objects are validated in strict
JSON mode (no coercion of "8080" to 8080) and the dump (`by_alias`, `exclude_unset`) is compared with the
input: any field the model dropped is reported as unknown. It checks types, required fields, enums, bounds
and unknown fields, but not CEL rules, `oneOf` exclusivity, list-map key uniqueness or formats; unknown
fields are found only once the object otherwise validates. It knows Istio 1.24 (e.g. no ServiceEntry
resolution `DYNAMIC_DNS`, no fields added since), and all Istio kinds are taken to be namespaced.

Istio schema facts worth knowing (CRDs of the 1.31 line)
--------------------------------------------------------
- Port numbers (ServiceEntry `ports[].number`/`targetPort`, WorkloadEntry `ports` values) are uint32 in the
  schema; only CEL narrows them to 1-65535, so a schema-only check passes port 0.
- ServiceEntry `ports` is a list-map keyed by `name` (duplicate names rejected) and a CEL rule rejects
  duplicate numbers; `name` and `number` are required, `hosts` (1-256, no "*") too. WorkloadEntry `ports`
  is a map from port name (CEL: `^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$`, < 63) to number.
- `exportTo` is a bare list of strings: ".", "*" and namespace names are not checked by the schema.
- Durations are plain strings checked only by CEL (`duration(self) >= duration('1ms')`, Go syntax).
- No spec field is int-or-string; AuthorizationPolicy `to.operation.ports` are strings ("8080").
- Protobuf wrapper fields are nullable (DestinationRule `consecutive5xxErrors`, `localityLbSetting.enabled`);
  plain ones (`maxEjectionPercent`, int32) are not.

Speed
-----
CRD index, validators and CEL programs are built once per process (`functools.lru_cache`). celpy 0.5
interprets (~0.3-1 ms a rule; its CompiledRunner mis-evaluates `has()` in conditionals), so rule outcomes
are memoised on the rule and only the part of `self` it can observe: `has(self.f)` needs to know whether
`f` is set, `self.all(k, ...)` on a map only its keys. Measured on 10,000 generated objects (the nine kinds,
1,250 services, one busy core of two): CRD backend 5.6 s from a cold process (0.5 s imports, 0.8 s CRD
load, ~1 s for 2,550 distinct CEL evaluations, the rest jsonschema), 2.9 s warm; cloudcoil backend 4.0 s
cold (2.3 s of it importing the package's ~3,400 models), 1.1 s warm.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import importlib
import importlib.metadata
import json
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import celpy
import jsonschema
import pydantic
import yaml
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError
from lark import Tree

CRDS_ENV = "FLEET_MESH_ISTIO_CRDS"
_DEFAULT_CRDS = Path(__file__).resolve().parent.parent.parent / "shared" / "istio" / "crd-all.gen.yaml"

# CEL rule text -> why it is not evaluated. Keep each reason specific; see the module docstring.
UNEVALUATED_RULES: Mapping[str, str] = {}

Location = tuple[str | int, ...]
Problem = tuple[Location, str]

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_OBJECT_META_FIELDS = frozenset({
    "name", "namespace", "labels", "annotations", "generateName", "finalizers", "ownerReferences", "uid",
    "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
    "managedFields", "selfLink",
})
_CUSTOM_RESOURCE_FIELDS = frozenset({"apiVersion", "kind", "metadata", "spec"})
_NAMESPACE_FIELDS = frozenset({"apiVersion", "kind", "metadata"})


# ---------------------------------------------------------------------------------------------- public API


def schema_source() -> str:
    """The active backend: `crd:<path>` or `cloudcoil-models-istio <version>`."""
    path = _crd_path()
    if path is not None:
        return f"crd:{path}"
    return f"cloudcoil-models-istio {importlib.metadata.version('cloudcoil.models.istio')}"


def validate_object(obj: Mapping[str, Any]) -> list[str]:
    """Every schema problem of one object, as `"Kind/ns/name: $.path: message"`; empty when valid."""
    if not isinstance(obj, Mapping):
        return [f"?: $: expected an object (a dict), got {type(obj).__name__}"]
    label = _label(obj)
    rendered = (f"{label}: {_render_path(path)}: {message}" for path, message in _problems(obj))
    return list(dict.fromkeys(rendered))  # union branches can report one problem twice


def assert_valid(objs: Iterable[Mapping[str, Any]]) -> None:
    """Raise AssertionError listing every problem of every object."""
    problems = [problem for obj in objs for problem in validate_object(obj)]
    if problems:
        raise AssertionError(
            f"{len(problems)} Istio schema problem(s) ({schema_source()}):\n" + "\n".join(problems)
        )


# ------------------------------------------------------------------------------------------- dispatching


class _KindChecker(Protocol):
    @property
    def namespaced(self) -> bool: ...

    def problems(self, obj: Mapping[str, Any]) -> Iterator[Problem]: ...


def _problems(obj: Mapping[str, Any]) -> Iterator[Problem]:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        yield (), "apiVersion and kind must be strings"
        return
    if (api_version, kind) == ("v1", "Namespace"):
        yield from _envelope_problems(obj, namespaced=False, fields=_NAMESPACE_FIELDS)
        return
    group, _, version = api_version.rpartition("/")
    crds = _crd_path()
    checker: _KindChecker | None = (
        _crd_index(str(crds)).get((group, version, kind)) if crds else _model_kind(group, version, kind)
    )
    if checker is None:
        yield ("apiVersion",), f"no schema for kind {kind} in {api_version} ({schema_source()})"
        return
    yield from _envelope_problems(obj, namespaced=checker.namespaced, fields=_CUSTOM_RESOURCE_FIELDS)
    yield from checker.problems(obj)


def _crd_path() -> Path | None:
    configured = os.environ.get(CRDS_ENV)
    if configured:
        path = Path(configured).resolve()
        if path.is_file():
            return path
        _warn_missing_crds(configured)
        return None
    return _DEFAULT_CRDS if _DEFAULT_CRDS.is_file() else None


@functools.cache
def _warn_missing_crds(configured: str) -> None:
    # Once per value: CI sets the variable, and a wrong path must not silently weaken every test.
    warnings.warn(
        f"{CRDS_ENV}={configured} does not exist; checking Istio objects with cloudcoil-models-istio instead",
        UserWarning,
        stacklevel=3,
    )


def _label(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    kind, name, namespace = obj.get("kind", "?"), meta.get("name", "?"), meta.get("namespace")
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def _render_path(path: Location) -> str:
    parts = ["$"]
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            parts.append(f".{part}")
        else:
            parts.append(f"[{part!r}]")
    return "".join(parts)


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -------------------------------------------------------------------------------- envelope and metadata


def _envelope_problems(obj: Mapping[str, Any], namespaced: bool, fields: frozenset[str]) -> Iterator[Problem]:
    for key in obj:
        if key not in fields:
            yield (key,), f"unknown top-level field {key!r}"
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        yield ("metadata",), "required: an object with at least a name"
        return
    for key in meta:
        if key not in _OBJECT_META_FIELDS:
            yield ("metadata", key), f"unknown field {key!r}"
    # A Namespace's name is itself a namespace, so it is held to the stricter label rule.
    name_rule, name_limit = (_DNS_SUBDOMAIN, 253) if namespaced else (_DNS_LABEL, 63)
    yield from _name_problems(meta.get("name"), ("metadata", "name"), name_rule, name_limit)
    if namespaced:
        yield from _name_problems(meta.get("namespace"), ("metadata", "namespace"), _DNS_LABEL, 63)
    elif "namespace" in meta:
        yield ("metadata", "namespace"), f"{obj.get('kind')} is cluster-scoped and takes no namespace"
    yield from _string_map_problems(meta.get("labels"), ("metadata", "labels"), check_values=True)
    yield from _string_map_problems(meta.get("annotations"), ("metadata", "annotations"), check_values=False)


def _name_problems(name: Any, path: Location, rule: re.Pattern[str], limit: int) -> Iterator[Problem]:
    if name is None:
        yield path, "required"
    elif not isinstance(name, str) or len(name) > limit or not rule.fullmatch(name):
        kind = "label" if rule is _DNS_LABEL else "subdomain"
        yield path, f"{_short(repr(name))} is not a DNS-1123 {kind} (lower-case alphanumerics and '-', ≤ {limit})"


def _string_map_problems(value: Any, path: Location, check_values: bool) -> Iterator[Problem]:
    if value is None:
        return
    if not isinstance(value, Mapping):
        yield path, f"expected a map of strings to strings, got {type(value).__name__}"
        return
    for key, item in value.items():
        at = (*path, str(key))
        if not isinstance(key, str) or not _is_qualified_name(key):
            yield at, f"{_short(repr(key))} is not a valid key ([prefix/]name, name ≤ 63)"
        if not isinstance(item, str):
            yield at, f"value must be a string, got {type(item).__name__}"
        elif check_values and (len(item) > 63 or not _LABEL_VALUE.fullmatch(item)):
            yield at, f"{_short(repr(item))} is not a valid label value (≤ 63, alphanumerics, '-', '_', '.')"


def _is_qualified_name(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return len(name) <= 63 and bool(_QUALIFIED_NAME.fullmatch(name))


# ------------------------------------------------------------------------------------------ CRD backend


@dataclass(frozen=True)
class _Rule:
    rule: str
    message: str


@dataclass(frozen=True)
class _CelNode:
    """The CEL rules of one schema node and of the descendants that have any."""

    rules: tuple[_Rule, ...]
    properties: Mapping[str, _CelNode]
    items: _CelNode | None
    values: _CelNode | None  # additionalProperties: each value of a map


@dataclass(frozen=True)
class _CrdKind:
    validator: jsonschema.protocols.Validator
    cel: _CelNode | None
    spec_required: bool
    namespaced: bool

    def problems(self, obj: Mapping[str, Any]) -> Iterator[Problem]:
        if "spec" not in obj:
            if self.spec_required:
                yield (), "'spec' is a required property"
            return
        problems, tainted = _schema_problems(self.validator, obj["spec"])
        yield from problems
        if self.cel is not None:
            yield from _cel_problems(self.cel, obj["spec"], ("spec",), tainted)


@functools.lru_cache(maxsize=4)
def _crd_documents(path: str) -> list[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 0.15 s instead of 2 s
    with open(path, encoding="utf-8") as stream:
        return [doc for doc in yaml.load_all(stream, Loader=loader) if doc]


@functools.lru_cache(maxsize=4)
def _crd_index(path: str) -> Mapping[tuple[str, str, str], _CrdKind]:
    """(group, version, kind) -> checker, for every served version of every CRD in the file."""
    index: dict[tuple[str, str, str], _CrdKind] = {}
    for crd in _crd_documents(path):
        if crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for version in spec["versions"]:
            if not version.get("served"):
                continue
            root = version["schema"]["openAPIV3Schema"]
            _refuse_root_rules(root)
            spec_schema = root.get("properties", {}).get("spec", {"x-kubernetes-preserve-unknown-fields": True})
            index[(spec["group"], version["name"], spec["names"]["kind"])] = _CrdKind(
                validator=_Validator(_to_jsonschema(spec_schema, structural=True), format_checker=_FORMATS),
                cel=_cel_tree(spec_schema),
                spec_required="spec" in root.get("required", ()),
                namespaced=spec.get("scope") == "Namespaced",
            )
    return index


def _refuse_root_rules(root: Mapping[str, Any]) -> None:
    # Only rules under `spec` are walked; a rule on the object itself would otherwise be skipped silently.
    skipped = [r["rule"] for r in root.get("x-kubernetes-validations", ()) if r["rule"] not in UNEVALUATED_RULES]
    if skipped:
        raise ValueError(f"object-level CEL rules {skipped} are not evaluated; allow-list them with a reason")


def _to_jsonschema(node: Mapping[str, Any], structural: bool) -> dict[str, Any]:
    """A copy of one OpenAPI v3 schema node that jsonschema checks the way the API server does."""
    out = {key: value for key, value in node.items() if not key.startswith("x-") and key != "description"}
    if "properties" in node:
        out["properties"] = {name: _to_jsonschema(sub, structural) for name, sub in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), Mapping):
        out["additionalProperties"] = _to_jsonschema(node["additionalProperties"], structural)
    if "items" in node:
        out["items"] = _to_jsonschema(node["items"], structural)
    for junctor in ("allOf", "anyOf", "oneOf"):
        if junctor in node:
            out[junctor] = [_to_jsonschema(sub, structural=False) for sub in node[junctor]]
    if "not" in node:
        out["not"] = _to_jsonschema(node["not"], structural=False)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    elif node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if node.get("x-kubernetes-list-type") == "map":
        out["listMapKeys"] = node.get("x-kubernetes-list-map-keys", [])
    is_object = node.get("type") == "object" or "properties" in node
    preserves = node.get("x-kubernetes-preserve-unknown-fields")
    if structural and is_object and "additionalProperties" not in node and not preserves:
        out["additionalProperties"] = False  # what pruning does to undeclared fields
    return out


def _unique_list_map_keys(validator: Any, keys: list[str], instance: Any, schema: Any) -> Iterator[Any]:
    if not isinstance(instance, list):
        return
    first_seen: dict[str, int] = {}
    for index, item in enumerate(instance):
        if not isinstance(item, Mapping):
            continue
        key = json.dumps([item.get(name) for name in keys], default=repr)
        if key in first_seen:
            described = ", ".join(f"{name}={item.get(name)!r}" for name in keys)
            yield jsonschema.ValidationError(
                f"duplicate entry with {described} (also at [{first_seen[key]}])", path=[index]
            )
        first_seen.setdefault(key, index)


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())
    ranges = {"int32": 31, "int64": 63}
    for name, bits in ranges.items():
        low, high = -(2**bits), 2**bits - 1
        checker.checks(name)(lambda v, lo=low, hi=high: not isinstance(v, int) or lo <= v <= hi)
    for name, bits in {"uint32": 32, "uint64": 64}.items():
        checker.checks(name)(lambda v, hi=2**bits - 1: not isinstance(v, int) or 0 <= v <= hi)
    checker.checks("byte", raises=(binascii.Error, ValueError))(
        lambda v: not isinstance(v, str) or base64.b64decode(v, validate=True) is not None
    )
    return checker


# Draft 7 counts 8080.0 as an integer; in a generated object it is a float that renders as `8080.0`.
_Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    validators={"listMapKeys": _unique_list_map_keys},
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool)
    ),
)
_FORMATS = _format_checker()


# Errors after which a CEL rule reading the value would fail to evaluate rather than judge it. Value errors
# (enum, bounds, patterns, duplicates, exclusivity) leave the value well-typed, so its rules still run.
_MALFORMING = frozenset({"type", "required", "anyOf"})


def _schema_problems(validator: Any, spec: Any) -> tuple[list[Problem], set[Location]]:
    """Schema problems under `$.spec`, and the paths (with ancestors) whose values are ill-typed."""
    problems: list[Problem] = []
    tainted: set[Location] = set()
    for error in validator.iter_errors(spec):
        path: Location = ("spec", *error.absolute_path)
        if error.validator == "additionalProperties" and error.validator_value is False:
            declared = error.schema.get("properties", {})
            unknown = [key for key in error.instance if key not in declared]
            problems.extend((path + (key,), f"unknown field {key!r}") for key in unknown)
            continue  # CEL never sees pruned fields, so its rules still apply here
        problems.append((path, _schema_message(error)))
        if error.validator in _MALFORMING:
            tainted.update(path[:length] for length in range(1, len(path) + 1))
    return problems, tainted


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator in ("oneOf", "anyOf"):
        branches = error.validator_value
        exclusive = [b["required"][0] for b in branches if list(b) == ["required"] and len(b["required"]) == 1]
        if exclusive and isinstance(error.instance, Mapping):
            found = [name for name in exclusive if name in error.instance]
            return f"at most one of {', '.join(exclusive)} may be set; found {', '.join(found)}"
        types = [b["type"] for b in branches if list(b) == ["type"]]
        if types and len(types) == len(branches):
            return f"{_short(error.instance)} is not of type {' or '.join(types)}"
    return _short(error.message, 240)


def _cel_tree(schema: Mapping[str, Any]) -> _CelNode | None:
    """The CEL rules of a schema, or None when it has none. Kubernetes forbids them inside junctors."""
    rules = []
    for rule in schema.get("x-kubernetes-validations", ()):
        if rule["rule"] not in UNEVALUATED_RULES:
            _require_supported(rule["rule"])
            rules.append(_Rule(rule["rule"], rule.get("message") or f"failed rule: {rule['rule']}"))
    properties = {
        name: node for name, sub in schema.get("properties", {}).items() if (node := _cel_tree(sub)) is not None
    }
    items = _cel_tree(schema["items"]) if isinstance(schema.get("items"), Mapping) else None
    extra = schema.get("additionalProperties")
    values = _cel_tree(extra) if isinstance(extra, Mapping) else None
    if not (rules or properties or items or values):
        return None
    return _CelNode(tuple(rules), properties, items, values)


def _cel_problems(node: _CelNode, value: Any, path: Location, tainted: set[Location]) -> Iterator[Problem]:
    if value is None:  # null means unset: the API server runs no rule on it
        return
    for rule in () if path in tainted else node.rules:
        status = _rule_status(rule.rule, value)
        if status is False:
            yield path, rule.message
        elif status is not True:
            yield path, f"{rule.message} (rule could not be evaluated: {status}; rule: {rule.rule})"
    # Structural schemas never declare both properties and additionalProperties on one node.
    if isinstance(value, Mapping):
        for key, child in value.items():
            sub = node.properties.get(key) if node.values is None else node.values
            if sub is not None:
                yield from _cel_problems(sub, child, path + (key,), tainted)
    elif isinstance(value, list) and node.items is not None:
        for index, item in enumerate(value):
            yield from _cel_problems(node.items, item, path + (index,), tainted)


# ------------------------------------------------------------------------------------------------- CEL


def _cel_error_text(error: BaseException) -> str:
    args = error.args
    if isinstance(error, CELEvalError) and len(args) >= 3 and args[2]:
        return f"{args[0]}: {_short(str(args[2][0]))}"
    return _short(str(args[0]) if args else type(error).__name__)


_GO_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)")
_NANOS = {
    "ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9,
}


def _duration(text: Any) -> celtypes.DurationType | CELEvalError:
    """Kubernetes CEL `duration()`: Go's time.ParseDuration grammar and int64-nanosecond range."""
    if isinstance(text, celtypes.DurationType):
        return text
    raw = str(text)
    sign, body = (-1, raw[1:]) if raw.startswith("-") else (1, raw.removeprefix("+"))
    if body == "0":
        return celtypes.DurationType(0)
    nanos, position = Decimal(0), 0
    for match in _GO_DURATION_PART.finditer(body):
        number = match.group(1)
        if match.start() != position or not number.strip("."):
            break
        nanos += Decimal(number) * _NANOS[match.group(2)]
        position = match.end()
    if not body or position != len(body) or nanos > 2**63 - 1:
        return CELEvalError(f"invalid duration {raw!r} (Go syntax, e.g. '5s', '1m30s', '100ms')")
    return celtypes.DurationType(datetime.timedelta(microseconds=sign * int(nanos) // 1000))


def _substring(text: Any, start: Any, end: Any = None) -> celtypes.StringType | CELEvalError:
    """Kubernetes CEL strings library `substring(start[, end])`, code-point indexed, strict bounds."""
    raw = str(text)
    stop = len(raw) if end is None else int(end)
    if not 0 <= int(start) <= stop <= len(raw):
        return CELEvalError(f"substring({start}, {end}) out of range for a string of length {len(raw)}")
    return celtypes.StringType(raw[int(start) : stop])


@dataclass(frozen=True)
class _Url:
    scheme: str


_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


def _request_uri_scheme(text: str) -> str | None:
    """The scheme Go's url.ParseRequestURI finds in `text`, or None where it fails (an approximation)."""
    if not text or any(ord(char) < 0x20 or char == "\x7f" for char in text):
        return None
    match = _URL_SCHEME.match(text)
    if match is None:
        return "" if text.startswith("/") else None
    rest = text[match.end() :]
    if rest.startswith("//"):
        host = rest[2:].split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
        port = host.rpartition(":")[2] if ":" in host and not host.endswith("]") else ""
        if (not port.isdigit() and port != "") or re.search(r"[\s<>\"{}|\\^`]", host):
            return None
    return match.group(1).lower()


def _is_url(text: Any) -> celtypes.BoolType:
    return celtypes.BoolType(_request_uri_scheme(str(text)) is not None)


def _url(text: Any) -> _Url | CELEvalError:
    scheme = _request_uri_scheme(str(text))
    return _Url(scheme) if scheme is not None else CELEvalError(f"{_short(str(text))} is not a valid URL")


def _get_scheme(url: Any) -> celtypes.StringType | CELEvalError:
    return celtypes.StringType(url.scheme) if isinstance(url, _Url) else CELEvalError("getScheme() needs a url")


_FUNCTIONS: dict[str, Any] = {
    "duration": _duration, "substring": _substring, "isURL": _is_url, "url": _url, "getScheme": _get_scheme,
}
_ITERATING_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_SUPPORTED = frozenset(celpy.evaluation.base_functions) | {"has"} | _ITERATING_MACROS | frozenset(_FUNCTIONS)


@functools.lru_cache(maxsize=1)
def _cel_environment() -> celpy.Environment:
    # Interpreted: celpy 0.5's CompiledRunner mis-evaluates `has(...) ? a : b`.
    return celpy.Environment(runner_class=celpy.InterpretedRunner)


@functools.cache
def _cel_ast(rule: str) -> Tree[Any]:
    return _cel_environment().compile(rule)


@functools.cache
def _cel_program(rule: str) -> celpy.Runner:
    return _cel_environment().program(_cel_ast(rule), functions=_FUNCTIONS)


def _require_supported(rule: str) -> None:
    """Refuse, at load time, a rule that would only fail at evaluation: new CRDs force a decision."""
    ast = _cel_ast(rule)
    called = {str(n.children[0]) for n in ast.iter_subtrees() if n.data == "ident_arg"}
    called |= {str(n.children[1]) for n in ast.iter_subtrees() if n.data == "member_dot_arg"}
    missing = called - _SUPPORTED
    if missing:
        raise ValueError(
            f"CEL rule {rule!r} calls {sorted(missing)}, which istio_schema does not implement: "
            "implement them, or add the rule to UNEVALUATED_RULES with the reason"
        )


@dataclass(frozen=True)
class _Reads:
    """What a rule reads of a map-valued `self`; see `_self_reads`."""

    fields: Mapping[str, bool]  # field -> True when only whether it is set matters (`has(self.f)`)
    keys: bool  # iterates the keys (`self.all(k, ...)`); for a list the elements, i.e. everything


@functools.cache
def _self_reads(rule: str) -> _Reads | None:
    """The parts of `self` a rule can observe, or None when it may read any of it (e.g. `self[k]`)."""
    ast = _cel_ast(rule)
    parent = {id(child): node for node in ast.iter_subtrees() for child in node.children if isinstance(child, Tree)}
    fields: dict[str, bool] = {}
    keys = False
    for node in ast.iter_subtrees():
        if node.data != "ident" or node.children[0] != "self":
            continue
        # `self.f` parses as member_dot(member(primary(ident self)), f);
        # `self.all(k, ...)` as member_dot_arg(member(primary(ident self)), all, exprlist).
        member = parent.get(id(parent[id(node)]))
        use = parent.get(id(member)) if member is not None else None
        if use is not None and use.data == "member_dot":
            name = str(use.children[1])
            fields[name] = fields.get(name, True) and _is_has_argument(use, parent)
        elif use is not None and use.data == "member_dot_arg" and use.children[1] in _ITERATING_MACROS:
            keys = True
        else:
            return None
    return _Reads(fields, keys)


def _is_has_argument(node: Tree[Any], parent: Mapping[int, Tree[Any]]) -> bool:
    above = parent.get(id(node))
    while above is not None and above.data != "exprlist" and len(above.children) == 1:
        above = parent.get(id(above))
    if above is None or above.data != "exprlist" or len(above.children) != 1:
        return False
    call = parent.get(id(above))
    return call is not None and call.data == "ident_arg" and call.children[0] == "has"


def _rule_status(rule: str, value: Any) -> bool | str:
    """True/False as the rule holds for `value`, or why it could not be evaluated."""
    reads = _self_reads(rule)
    if reads is not None and isinstance(value, Mapping):
        # Memoising on only what the rule can observe lets one evaluation serve every object that agrees
        # on it (celpy interprets: ~0.5 ms a rule); placeholders stand in for values it cannot read.
        seen: dict[str, Any] = dict.fromkeys(value) if reads.keys else {}
        read = [name for name in reads.fields if name in value]
        seen.update((name, True if reads.fields[name] else value[name]) for name in read)
        value = seen
    return _cached_status(rule, json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr))


@functools.lru_cache(maxsize=1 << 16)
def _cached_status(rule: str, value_json: str) -> bool | str:
    return _evaluate(rule, json.loads(value_json))


def _evaluate(rule: str, value: Any) -> bool | str:
    try:
        result = _cel_program(rule).evaluate({"self": json_to_cel(value)})
    except Exception as error:  # any failure is reported as a problem, never passed as valid
        return _cel_error_text(error)
    if isinstance(result, celtypes.BoolType):
        return bool(result)
    return f"returned {type(result).__name__}, not a bool"


# ------------------------------------------------------------------------------------- cloudcoil backend


@dataclass(frozen=True)
class _ModelKind:
    model: type[pydantic.BaseModel]
    namespaced: bool = True  # every Istio kind is; the package does not record scope

    def problems(self, obj: Mapping[str, Any]) -> Iterator[Problem]:
        if "spec" not in obj:
            if self.model.model_fields["spec"].is_required():
                yield (), "'spec' is a required property"
            return
        document = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "spec": obj["spec"]}
        try:
            # Strict JSON mode: "8080" is not coerced to 8080 as lax mode would.
            model = self.model.model_validate_json(json.dumps(document, default=repr), strict=True)
        except pydantic.ValidationError as error:
            yield from _pydantic_problems(error, document)
            return
        kept = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
        yield from _dropped_fields(document["spec"], kept.get("spec"), ("spec",))


@functools.cache
def _model_kind(group: str, version: str, kind: str) -> _ModelKind | None:
    package = group.removesuffix(".istio.io")
    if package == group or not package.isidentifier() or not version.isidentifier():
        return None
    try:
        module = importlib.import_module(f"cloudcoil.models.istio.{package}.{version}")
    except ModuleNotFoundError:
        return None
    model = getattr(module, kind, None)
    if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
        return None
    kind_field = model.model_fields.get("kind")
    if kind_field is None or kind_field.default != kind or "spec" not in model.model_fields:
        return None  # a nested model that happens to share the name
    return _ModelKind(model)


def _pydantic_problems(error: pydantic.ValidationError, document: Mapping[str, Any]) -> Iterator[Problem]:
    for detail in error.errors(include_url=False):
        message = detail["msg"]
        if detail["type"] != "missing":
            message += f" (got {_short(detail['input'])})"
        yield _instance_path(document, detail["loc"]), message


def _instance_path(document: Any, loc: tuple[str | int, ...]) -> Location:
    """The instance path of a pydantic error location, without union-member tags such as 'LoadBalancer'."""
    path: list[str | int] = []
    current = document
    for position, part in enumerate(loc):
        in_mapping = isinstance(current, Mapping) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_mapping or in_list:
            current = current[part]
        elif position != len(loc) - 1:  # the last part may name a missing field
            continue
        path.append(part)
    return tuple(path)


def _dropped_fields(given: Any, kept: Any, path: Location) -> Iterator[Problem]:
    """What the model silently dropped (unknown fields) or rewrote, comparing input with its dump."""
    if isinstance(given, Mapping) and isinstance(kept, Mapping):
        for key, value in given.items():
            if key in kept:
                yield from _dropped_fields(value, kept[key], path + (key,))
            else:
                yield path + (key,), f"unknown field {key!r}"
    elif isinstance(given, list) and isinstance(kept, list) and len(given) == len(kept):
        for index, (item, kept_item) in enumerate(zip(given, kept, strict=True)):
            yield from _dropped_fields(item, kept_item, path + (index,))
    elif given != kept:
        yield path, f"{_short(given)} does not survive the model unchanged (became {_short(kept)})"
