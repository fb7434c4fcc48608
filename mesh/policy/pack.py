"""The rules as CrossGuard policies: what `policy/__main__.py` hands to `PolicyPack`.

Constructing the policies is cheap and side-effect free; only `PolicyPack(...)` starts the analyzer's
gRPC server (and blocks), so that stays in the pack's own entry point.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from mesh.policy.rules import RULES, Rule
from mesh.policy.view import Stack, from_policy_resource, from_resource_args

PACK_NAME = "fleet-mesh"
# Every rule is something the cloud would refuse, or a hole it would silently open: all block `up`.
PACK_ENFORCEMENT = EnforcementLevel.MANDATORY


def policies() -> list[Policy]:
    return [as_policy(rule) for rule in RULES]


def as_policy(rule: Rule) -> Policy:
    if rule.resource is not None:
        check = rule.resource

        def validate_resource(args: ResourceValidationArgs, report: ReportViolation) -> None:
            if rule.applies_to(args.resource_type):
                for message in check(from_resource_args(args)):
                    report(message, None)

        return ResourceValidationPolicy(rule.name, rule.full_description, validate_resource, url=rule.source)
    assert rule.stack is not None
    check_stack = rule.stack

    def validate_stack(args: StackValidationArgs, report: ReportViolation) -> None:
        stack = Stack([from_policy_resource(r) for r in args.resources])
        for urn, message in check_stack(stack):
            report(message, urn or None)

    return StackValidationPolicy(rule.name, rule.full_description, validate_stack, url=rule.source)
