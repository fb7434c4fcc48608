"""What a rule sees: one plain view of a resource, whoever produced it.

The same rules run under `pulumi preview --policy-pack policy` (the engine hands `pulumi_policy`
argument objects whose props are proxies that raise on unknown values) and in-process over
`mesh.preview` registrations. Both are converted here into `Resource`: props as plain dicts with every
unknown replaced by `COMPUTED`, options and dependencies as URNs. A rule then never meets a proxy and
never raises `UnknownValueError` halfway through a check.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi_policy
from pulumi_policy import proxy as _proxy

# The marker `mesh.preview` writes for values only the cloud knows; engine unknowns become it too.
COMPUTED = "<computed>"


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    protect: bool = False
    provider: str = ""  # the provider's URN; "" = the default provider
    parent: str = ""
    dependencies: tuple[str, ...] = ()
    custom: bool = True

    def get(self, path: str) -> Any:
        """The value at a dotted camelCase path, or None where any step is missing."""
        return dig(self.props, path)

    @property
    def label(self) -> str:
        """How messages name the resource: its type's last segment and its Pulumi name."""
        return f"{self.type.rsplit(':', 1)[-1]} '{self.name}'"


def dig(value: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def is_unknown(value: Any) -> bool:
    """Unknown at preview: the whole value, or a string built from one (`<computed>/32`)."""
    return isinstance(value, str) and COMPUTED in value


def known_str(value: Any) -> str | None:
    return value if isinstance(value, str) and not is_unknown(value) else None


def plain(value: Any) -> Any:
    """A deep copy without `pulumi_policy` proxies; unknown sentinels become `COMPUTED`."""
    if isinstance(value, _proxy._DictProxy | _proxy._ListProxy):
        value = value["__target"]  # the proxy's documented escape hatch; reading items would raise
    if isinstance(value, str):
        return COMPUTED if _proxy._is_unknown(value) else value
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [plain(v) for v in value]
    return value


def from_resource_args(args: pulumi_policy.ResourceValidationArgs) -> Resource:
    """Resource validations get no dependencies from the engine: rules needing them are stack rules."""
    return Resource(
        type=args.resource_type, name=args.name, urn=args.urn, props=plain(args.props),
        protect=bool(args.opts.protect), provider=args.provider.urn if args.provider else "",
        parent=args.opts.parent or "")


def from_policy_resource(resource: pulumi_policy.PolicyResource) -> Resource:
    parent = resource.parent.urn if resource.parent is not None else (resource.opts.parent or "")
    return Resource(
        type=resource.resource_type, name=resource.name, urn=resource.urn, props=plain(resource.props),
        protect=bool(resource.opts.protect), provider=resource.provider.urn if resource.provider else "",
        parent=parent, dependencies=tuple(d.urn for d in resource.dependencies))


@dataclass
class Stack:
    """Every resource of a stack, indexed for the cross-resource rules."""

    resources: list[Resource]
    by_urn: dict[str, Resource] = field(init=False)
    _by_type: dict[str, list[Resource]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_urn = {r.urn: r for r in self.resources}
        self._by_type = defaultdict(list)
        for resource in self.resources:
            self._by_type[resource.type].append(resource)

    def of_type(self, *types: str) -> list[Resource]:
        return [r for t in types for r in self._by_type.get(t, [])]

    def where(self, type_: str, **props: Any) -> list[Resource]:
        """Resources of a type whose top-level props equal the given (camelCase) values."""
        return [r for r in self._by_type.get(type_, []) if all(r.props.get(k) == v for k, v in props.items())]

    def dependencies_of(self, resource: Resource) -> Iterator[Resource]:
        for urn in resource.dependencies:
            if urn in self.by_urn:
                yield self.by_urn[urn]

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)


def stack_of(resources: Iterable[Resource]) -> Stack:
    return Stack(list(resources))
