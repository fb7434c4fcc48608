"""Compile options: one explicit value, passed in; the compiler reads no globals or environment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CompileOptions:
    revision: str | None = None
    """Istio revision to inject (`istio.io/rev`); None uses the default `istio-injection` label."""

    cluster_domain: str = "cluster.local"
    """Kubernetes cluster domain, for the namespace-local part of Sidecar egress."""

    namespace_local_egress: bool = True
    """Let sidecars reach Kubernetes Services of their own namespace (`./*.svc.<domain>`).

    A team's own namespace-local dependencies (its database, its cache) are not in the manifest;
    without this, REGISTRY_ONLY would cut them off. Public mesh hosts are still imported only where
    a call is declared, because they are not under the cluster domain."""

    load_balancer: str = "LEAST_REQUEST"
    """DestinationRule `loadBalancer.simple` for every service."""
