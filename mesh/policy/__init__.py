"""fleet-mesh's policy pack: the rules GCP, GKE, Helm and Istio enforce at apply time, checked before it.

`rules` holds the rules as pure functions over plain resource views (`view`); `pack` wraps them as
CrossGuard policies for `pulumi preview --policy-pack policy`; `harness.check` runs that same pack
in-process over `mesh.preview` registrations (what `mesh preview` and the tests do).
"""

from mesh.policy.harness import Violation, check, format_violations, policy_resources
from mesh.policy.pack import PACK_ENFORCEMENT, PACK_NAME, as_policy, policies
from mesh.policy.rules import RULES, Rule, by_name
from mesh.policy.view import COMPUTED, Resource, Stack

__all__ = [
    "COMPUTED", "PACK_ENFORCEMENT", "PACK_NAME", "RULES", "Resource", "Rule", "Stack", "Violation", "as_policy",
    "by_name", "check", "format_violations", "policies", "policy_resources",
]
