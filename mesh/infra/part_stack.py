"""A stack holding part 2+ of one cluster's mesh config (`mesh:meshConfigPart`, see `parts.py`).

It manages no cloud resource: only the part's objects, through a Kubernetes provider for the
cluster built from what the cluster's own stack exports (its DNS endpoint). Reading that export is
also the ordering across stacks: the export is written once that stack's control plane is applied
(`meshConfigParts` resolves after istiod), so a part cannot be applied before istiod's webhook can
validate it; and the stack refuses to run when its idea of the split or of the Istio revision
disagrees with that stack's, since two stacks owning the same object, or none owning it, is what a
mismatch would mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi import RunError

from mesh.infra.gke import kubeconfig, location_of
from mesh.infra.mesh_config import MeshConfig
from mesh.infra.peers import addresses_of, peer_outputs
from mesh.infra.pki import secret
from mesh.infra.plan import STACK_RESOURCE_LIMIT, Plan
from mesh.infra.stack_config import CONFIG_NAMESPACE
from mesh.outputs import SCHEMA_VERSION, services_output


def declare_part(plan: Plan) -> None:
    assert plan.part is not None
    cluster = plan.part.cluster
    spec = plan.world.clusters[cluster]
    objects = plan.compiled[cluster]
    if plan.estimated_resources > STACK_RESOURCE_LIMIT:
        pulumi.log.warn(f"this stack declares about {plan.estimated_resources:,} resources, more than "
                        f"{STACK_RESOURCE_LIMIT:,}: split {cluster}'s mesh config into more parts (`mesh shards`)")
    peers = peer_outputs(plan)
    owner = peers["clusters"].apply(lambda found: _owner(plan, found))
    provider = k8s.Provider(
        f"{cluster}-k8s",
        kubeconfig=secret(owner.apply(lambda c: kubeconfig(cluster, str(c["dnsEndpoint"])))),
        # The same identity as the provider of the cluster's own stack: one cluster, one identity.
        cluster_identifier=f"{spec.project}/{location_of(spec)}/{cluster}",
        enable_server_side_apply=True)
    # No `after`: istiod is in the other stack. Its export (`_owner`) exists only once an `up` of
    # that stack applied istiod and the shared Namespaces: the ordering is across runs.
    MeshConfig(cluster, objects, addresses_of(plan, {}, peers["clusters"]), after=[],
               opts=pulumi.ResourceOptions(providers=[provider]))
    pulumi.export("schemaVersion", SCHEMA_VERSION)
    pulumi.export("meshConfigPart", {"cluster": cluster, "part": plan.part.part, "of": plan.part.of,
                                     "objects": len(objects)})
    pulumi.export("clusters", {})
    pulumi.export("services", services_output(plan.world))
    pulumi.export("natAddresses", [])
    pulumi.export("natAddressesByRegion", {})
    pulumi.export("rootCaCertificate", peers["root_ca_certificate"])
    pulumi.export("kubeconfigs", pulumi.Output.secret({}))


def _owner(plan: Plan, clusters: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any]:
    """The cluster's entry in its own stack's outputs, checked against this stack's settings."""
    assert plan.part is not None
    name, part, of = plan.part.cluster, plan.part.part, plan.part.of
    found = clusters.get(name)
    if not found:
        raise RunError(f"no stack in {CONFIG_NAMESPACE}:peerStacks ({', '.join(plan.config.peer_stacks)}) exports "
                       f"{name}: part {part} of its mesh config is applied after the stack managing it (list that "
                       "stack there, and run its `pulumi up` first)")
    theirs = int(found.get("meshConfigParts", 1))  # numbers cross stacks as floats
    if theirs != of:
        raise RunError(f"the stack managing {name} splits its mesh config into {theirs} part(s), this stack into "
                       f"{of}: some objects would have two owners or none; regenerate both stack files with "
                       "`mesh shards --write`")
    installed = found.get("istioRevisions") or []
    if plan.revision not in installed:
        raise RunError(f"{name} has no istiod of revision {plan.revision}, which this stack's namespaces would be "
                       f"injected by (installed: {', '.join(installed) or 'none'}): set "
                       f"{CONFIG_NAMESPACE}:istioVersion as the stack managing {name} does")
    return found
