"""The north-south ingress: what the ingress gateway publishes, on which port, under which certificate.

The gateway itself (Istio's `gateway` Helm chart, release `istio-ingressgateway`, pods labelled
`istio: ingressgateway`) is installed by the Pulumi program in every cluster that runs an
`ingress: true` service, behind a load balancer that exposes 443 only. It terminates TLS and routes
`https://<host>` to the service's public host, so each cluster publishes the services it runs and
reaches other clusters only on failover, as any mesh caller would.

A service is published on its first HTTP, HTTP2 or GRPC port, in the order its owner declared them:
a public host names one backend, and a terminated HTTPS stream can only be routed as HTTP. A service
with no such port is not published (nothing could route to it).
"""

from __future__ import annotations

from mesh.compile.meta import HTTP_FAMILY
from mesh.manifest.schema import Fleet, Port, Service

GATEWAY_NAME = "ingress-gateway"
SELECTOR = {"istio": "ingressgateway"}  # set by the gateway chart from its release name
PORT = 443  # the only port the load balancer forwards; a plain-HTTP server would be unreachable
MIN_TLS = "TLSV1_2"


def published_port(service: Service) -> Port | None:
    """The port `https://<host>` routes to, or None where the gateway cannot route the service."""
    if not service.ingress:
        return None
    return next((port for port in service.ports if port.protocol in HTTP_FAMILY), None)


def domain_of(fleet: Fleet, host: str) -> str:
    """The most specific declared domain `host` is under (validation guarantees there is one)."""
    return max((d for d in fleet.domains if host.endswith("." + d)), key=len)


def credential_name(domain: str) -> str:
    """The Kubernetes TLS Secret, in the ingress namespace, the platform provides per domain.

    It holds a certificate for `*.<domain>`. The domain is used verbatim (Secret names may hold
    dots), so two domains never share a name."""
    return f"wildcard.{domain}"


def server_port_name(domain: str) -> str:
    # HTTPS servers sharing a port need distinct port names: Istio names each one's routes after it.
    return "https-" + domain.replace(".", "-")


def gateway_ref(fleet: Fleet) -> str:
    return f"{fleet.ingress_gateway.namespace}/{GATEWAY_NAME}"
