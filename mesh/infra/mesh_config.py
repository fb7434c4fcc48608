"""Mesh config: one cluster's compiled objects as Kubernetes resources on that cluster's provider.

Each object becomes one resource named `<cluster>/<Kind>/<namespace>/<name>`, a stable identity, so
an unrelated change never replaces it. Istio objects wait for the control plane (istiod's webhook
validates them) and for their namespace (compiled here, or the control plane's own: istio-system and
the ingress gateway's), and are registered once those have URNs (see `declare_objects`).
Namespaces are never deleted by Pulumi: when a service moves away the Namespace leaves the stack,
and deleting it would make Kubernetes delete every Deployment, Secret and PersistentVolumeClaim the
team keeps there; `mesh diff` flags it instead, for a person to clean up.
East-west addresses the manifest does not pin are written by the compiler as placeholders; here they
are replaced by the addresses this stack reserved, or those its peer stacks export.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from mesh.model import PLACEHOLDER_SUFFIX


def resource_name(cluster: str, obj: Mapping[str, Any]) -> str:
    metadata = obj["metadata"]
    return "/".join(p for p in (cluster, obj["kind"], metadata.get("namespace", ""), metadata["name"]) if p)


def resource_type(obj: Mapping[str, Any]) -> str:
    """The Pulumi type an object is registered as (what its URN holds)."""
    if obj["kind"] == "Namespace":
        return "kubernetes:core/v1:Namespace"
    return f"kubernetes:{obj['apiVersion']}:{obj['kind']}"


def substitute(value: Any, addresses: Mapping[str, pulumi.Input[str]]) -> Any:
    """A copy of `value` with every address placeholder replaced by its reserved address."""
    if isinstance(value, str) and value.endswith(PLACEHOLDER_SUFFIX):
        return addresses[value]
    if isinstance(value, dict):
        return {k: substitute(v, addresses) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, addresses) for v in value]
    return value


class MeshConfig(pulumi.ComponentResource):
    def __init__(self, cluster: str, objects: Sequence[Mapping[str, Any]],
                 addresses: Mapping[str, pulumi.Input[str]], after: Sequence[pulumi.Resource],
                 namespaces: Mapping[str, pulumi.Resource] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleet-mesh:mesh:Config", f"{cluster}-mesh", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        control_plane = dict(namespaces or {})
        compiled: dict[str, pulumi.Resource] = {}
        for obj in objects:
            if obj["kind"] == "Namespace":
                # After istiod: a sidecar-injection label on a namespace means nothing before it.
                compiled[obj["metadata"]["name"]] = k8s.core.v1.Namespace(
                    resource_name(cluster, obj), metadata=obj["metadata"],
                    opts=child.merge(pulumi.ResourceOptions(retain_on_delete=True, depends_on=list(after))))
        self.namespaces = {name: compiled[name] for name in sorted(compiled)}  # the Namespaces it declares
        # Everything that can fail is worked out now, so that a mistake stops the program here.
        declared = []
        for obj in objects:
            if obj["kind"] == "Namespace":
                continue
            namespace = obj["metadata"]["namespace"]
            # The engine's ordering (and delete order, --target): each object after its namespace,
            # which is after istiod; or after istiod and the control plane's own namespace.
            depends = ([compiled[namespace]] if namespace in compiled
                       else [*after, *([control_plane[namespace]] if namespace in control_plane else [])])
            declared.append((resource_name(cluster, obj), obj, substitute(obj.get("spec", {}), addresses), depends))

        def declare_objects(_: Any) -> int:
            for name, obj, spec, depends in declared:
                k8s.apiextensions.CustomResource(
                    name, api_version=obj["apiVersion"], kind=obj["kind"], metadata=obj["metadata"], spec=spec,
                    opts=child.merge(pulumi.ResourceOptions(depends_on=depends)))
            return len(objects)

        # The Istio objects are registered once all of istiod and the Namespaces have URNs. While
        # thousands of them wait behind the dependency chain (APIs to istiod, a dozen links), the
        # SDK's wait_for_rpcs starts a wait over every pending output again each time one link
        # resolves, which dominated registration (bench/registration_factors.py, bench/README.md).
        # A URN is known in previews too, so `pulumi preview` still shows every object (Pulumi's
        # caution about resources created in an apply concerns values a preview does not know).
        gate = [*after, *control_plane.values(), *compiled.values()]
        self.register_outputs({"objects": pulumi.Output.all(*(r.urn for r in gate)).apply(declare_objects)})
