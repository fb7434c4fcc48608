"""Object skeletons, provenance and the fixed names shared by every builder."""

from __future__ import annotations

from typing import Any

NETWORKING = "networking.istio.io/v1"
SECURITY = "security.istio.io/v1"
ISTIO_SYSTEM = "istio-system"
# Config-only namespace for services a cluster calls but does not run (reserved in
# mesh.manifest.rules.RESERVED_NAMESPACES): their ServiceEntry, DestinationRule and VirtualService.
IMPORTS_NAMESPACE = "mesh-imports"
EASTWEST_SELECTOR = {"istio": "eastwestgateway"}
EASTWEST_PORT = 15443
HTTP_FAMILY = frozenset({"HTTP", "HTTP2", "GRPC"})  # protocols Istio routes as HTTP

MANAGED_BY = "app.kubernetes.io/managed-by"
SERVICE_LABEL = "fleet-mesh.io/service"
SOURCE_ANNOTATION = "fleet-mesh.io/source"
CLUSTER_LABEL = "fleet-mesh.io/cluster"
ROLE_LABEL = "fleet-mesh.io/role"
STANDBY_LABEL = "fleet-mesh.io/standby"
TLS_MODE_LABEL = "security.istio.io/tlsMode"
NETWORK_LABEL = "topology.istio.io/network"

Obj = dict[str, Any]


def new(
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    spec: Obj | None,
    *,
    service: str | None = None,
    source: str | None = None,
    labels: dict[str, str] | None = None,
) -> Obj:
    """A Kubernetes object with fleet-mesh's provenance: who manages it, which service, which file."""
    metadata: Obj = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    # Keys in sorted order without sorting: MANAGED_BY sorts first, and objects carry either the
    # service label or extra labels (namespaces), never both.
    if service is not None and labels:
        raise ValueError("an object carries the service label or extra labels, not both")
    all_labels = {MANAGED_BY: "fleet-mesh"}
    if service is not None:
        all_labels[SERVICE_LABEL] = service
    elif labels:
        all_labels.update(sorted(labels.items()))
    metadata["labels"] = all_labels
    if source is not None:
        metadata["annotations"] = {SOURCE_ANNOTATION: source}
    obj: Obj = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    if spec is not None:
        obj["spec"] = spec
    return obj


def object_key(obj: Obj) -> tuple[str, str]:
    metadata = obj["metadata"]
    return metadata.get("namespace", ""), metadata["name"]
