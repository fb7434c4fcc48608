"""PeerAuthentication: mesh-wide STRICT mTLS, named `default` in the root namespace.

STRICT everywhere is what lets authorization trust the caller identities it sees.
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.compile import meta
from mesh.compile.context import ClusterContext


def build(ctx: ClusterContext) -> Iterator[meta.Obj]:
    del ctx  # the same in every cluster
    yield meta.new(meta.SECURITY, "PeerAuthentication", "default", meta.ISTIO_SYSTEM,
                   {"mtls": {"mode": "STRICT"}})
