"""Mesh PKI: one root CA for the fleet, one intermediate CA per cluster (Istio's plug-in CA).

A shared root is what lets a workload in one cluster verify a workload in another; each istiod signs
with its own intermediate, so a leaked cluster key is revoked without touching the others. The root
is either generated here (single-stack fleets) or an existing offline root given as config, the
production advice and the only choice when the fleet runs as several stacks. Private keys only ever
travel as Pulumi secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import pulumi
import pulumi_tls as tls

ROOT_VALIDITY_HOURS = 10 * 365 * 24
INTERMEDIATE_VALIDITY_HOURS = 2 * 365 * 24
CA_USES = ["cert_signing", "crl_signing", "digital_signature", "key_encipherment"]


def secret(value: pulumi.Output[str]) -> pulumi.Output[str]:
    return cast(pulumi.Output[str], pulumi.Output.secret(value))


@dataclass
class ProvidedRoot:
    certificate_pem: str
    private_key_pem: pulumi.Output[str]  # secret


@dataclass
class ClusterCa:
    """The four keys of Istio's `cacerts` Secret."""

    ca_cert: pulumi.Output[str]  # ca-cert.pem: this cluster's intermediate
    ca_key: pulumi.Output[str]  # ca-key.pem (secret)
    cert_chain: pulumi.Output[str]  # cert-chain.pem: intermediate, then root
    root_cert: pulumi.Output[str]  # root-cert.pem


class MeshPki(pulumi.ComponentResource):
    def __init__(self, name: str, trust_domain: str, clusters: list[str], root: ProvidedRoot | None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleet-mesh:pki:MeshPki", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if root is None:
            # Protected: replacing the root re-keys the whole mesh (every workload certificate chains to it).
            key = tls.PrivateKey(f"{name}-root-key", algorithm="ECDSA", ecdsa_curve="P384",
                                 opts=child.merge(pulumi.ResourceOptions(protect=True)))
            certificate = tls.SelfSignedCert(
                f"{name}-root", private_key_pem=key.private_key_pem, is_ca_certificate=True,
                subject={"common_name": f"{trust_domain} root CA", "organization": trust_domain},
                validity_period_hours=ROOT_VALIDITY_HOURS, allowed_uses=["cert_signing", "crl_signing"],
                opts=child)
            root_cert: pulumi.Output[str] = certificate.cert_pem
            root_key = secret(key.private_key_pem)
        else:
            root_cert, root_key = pulumi.Output.from_input(root.certificate_pem), root.private_key_pem
        self.root_certificate = root_cert
        self.clusters = {cluster: self._intermediate(name, cluster, trust_domain, root_cert, root_key, child)
                         for cluster in clusters}
        self.register_outputs({"rootCertificate": root_cert})

    @staticmethod
    def _intermediate(name: str, cluster: str, trust_domain: str, root_cert: pulumi.Output[str],
                      root_key: pulumi.Output[str], child: pulumi.ResourceOptions) -> ClusterCa:
        # Protected: a new intermediate key re-issues every certificate of the cluster's workloads.
        key = tls.PrivateKey(f"{name}-{cluster}-key", algorithm="ECDSA", ecdsa_curve="P256",
                             opts=child.merge(pulumi.ResourceOptions(protect=True)))
        request = tls.CertRequest(
            f"{name}-{cluster}-csr", private_key_pem=key.private_key_pem,
            subject={"common_name": f"{cluster} intermediate CA", "organization": trust_domain}, opts=child)
        certificate = tls.LocallySignedCert(
            f"{name}-{cluster}", cert_request_pem=request.cert_request_pem, ca_private_key_pem=root_key,
            ca_cert_pem=root_cert, is_ca_certificate=True,
            max_path_length=0,  # it signs workload certificates, never another CA
            validity_period_hours=INTERMEDIATE_VALIDITY_HOURS, early_renewal_hours=30 * 24,
            allowed_uses=CA_USES, opts=child)
        return ClusterCa(
            ca_cert=certificate.cert_pem,
            ca_key=secret(key.private_key_pem),
            cert_chain=pulumi.Output.all(certificate.cert_pem, root_cert).apply(lambda pems: "".join(pems)),
            root_cert=root_cert,
        )
