"""Run the policy pack in-process over `mesh.preview` registrations, the way the engine would.

Registrations become `pulumi_policy` argument objects exactly as the analyzer builds them: props
deserialized and wrapped in `unknown_checking_proxy`, with `<computed>` turned back into the engine's
unknown sentinel, so a rule that would trip over an unknown under `pulumi preview` trips here too
(pulumi-policy#445: hand-built args skip the proxies and hide such bugs). Each policy is then called
through its public `validate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from mesh.policy.pack import PACK_ENFORCEMENT, policies
from mesh.policy.view import COMPUTED

if TYPE_CHECKING:
    from mesh.preview import Registration


@dataclass(frozen=True, order=True)
class Violation:
    policy: str
    urn: str  # "" when the stack as a whole is at fault
    message: str
    enforcement: str  # "mandatory" | "advisory"

    @property
    def mandatory(self) -> bool:
        return self.enforcement == EnforcementLevel.MANDATORY.value


def _engine_value(value: Any) -> Any:
    """What the analyzer would receive: a value built from an unknown is wholly unknown."""
    if isinstance(value, str):
        return UNKNOWN_STRING_VALUE if COMPUTED in value else value
    if isinstance(value, dict):
        return {k: _engine_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_engine_value(v) for v in value]
    return value


def _props(registration: Registration) -> Any:
    return unknown_checking_proxy(_engine_value(registration.inputs))


def _options(registration: Registration) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=registration.protect, ignore_changes=list(registration.ignore_changes), delete_before_replace=None,
        aliases=[], custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[],
        parent=registration.parent or None)


def _provider(registration: Registration, by_urn: dict[str, Registration]) -> PolicyProviderResource | None:
    if not registration.provider:
        return None
    known = by_urn.get(registration.provider)
    if known is not None:
        return PolicyProviderResource(known.type, _props(known), known.urn, known.name)
    parts = registration.provider.split("::")
    kind, name = (parts[2].rsplit("$", 1)[-1], parts[3]) if len(parts) > 3 else ("", registration.provider)
    return PolicyProviderResource(kind, unknown_checking_proxy({}), registration.provider, name)


def policy_resources(registrations: Sequence[Registration]) -> list[PolicyResource]:
    """The stack as `StackValidationArgs.resources`: parents and dependencies linked as objects."""
    by_urn = {r.urn: r for r in registrations}
    resources = {r.urn: PolicyResource(r.type, _props(r), r.urn, r.name, _options(r), _provider(r, by_urn),
                                       None, [], {}) for r in registrations}
    for registration in registrations:
        resource = resources[registration.urn]
        resource.parent = resources.get(registration.parent)
        resource.dependencies.extend(resources[d] for d in registration.dependencies if d in resources)
    return list(resources.values())


def _level(policy: Policy) -> str:
    return (policy.enforcement_level or PACK_ENFORCEMENT).value


def check(registrations: Sequence[Registration], pack: Sequence[Policy] | None = None) -> list[Violation]:
    """Every violation of the pack (default: all of fleet-mesh's rules), sorted by policy, URN, message."""
    by_urn = {r.urn: r for r in registrations}
    violations: list[Violation] = []
    stack: list[PolicyResource] | None = None
    for policy in pack if pack is not None else policies():
        level = _level(policy)

        def report(message: str, urn: str | None, *, _policy: Policy = policy, _level: str = level,
                   _default: str = "") -> None:
            violations.append(Violation(_policy.name, urn or _default, message, _level))

        try:
            if isinstance(policy, ResourceValidationPolicy):
                # The engine analyzes what providers create; components carry no cloud rules.
                for r in (r for r in registrations if r.custom):
                    args = ResourceValidationArgs(r.type, _props(r), r.urn, r.name, _options(r),
                                                  _provider(r, by_urn))

                    def report_resource(message: str, _urn: str | None = None, *, _r: Registration = r) -> None:
                        report(message, _r.urn)  # the engine ties resource violations to the resource

                    policy.validate(args, report_resource)
            elif isinstance(policy, StackValidationPolicy):
                stack = stack if stack is not None else policy_resources(registrations)
                policy.validate(StackValidationArgs(stack), report)
        except UnknownValueError as exc:
            # What the engine does too: an advisory "can't run during preview", not a pass or a failure.
            violations.append(Violation(policy.name, "", f"can't run during preview: {exc.message}",
                                        EnforcementLevel.ADVISORY.value))
    return sorted(set(violations))


def format_violations(violations: Sequence[Violation]) -> str:
    """Grouped by rule, in `check`'s order (policy, URN, message): the same text every run."""
    from mesh.policy.rules import RULES

    descriptions = {rule.name: rule.full_description for rule in RULES}
    groups: dict[str, list[Violation]] = {}
    for violation in violations:
        groups.setdefault(violation.policy, []).append(violation)
    lines = []
    for name, found in groups.items():
        lines += ["", f"[{found[0].enforcement}] {name}: {descriptions.get(name, '')}"]
        for violation in found:
            lines += [f"  {violation.urn or '(stack)'}", f"    {violation.message}"]
    mandatory = sum(1 for v in violations if v.mandatory)
    lines += ["", f"policy pack: {len(RULES)} rules, {len(violations)} violation(s) of {len(groups)} rule(s), "
              f"{mandatory} mandatory" + ("; `pulumi up` would be blocked" if mandatory else "")]
    return "\n".join(lines)
