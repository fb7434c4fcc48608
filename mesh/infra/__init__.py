"""The Pulumi shell: components that declare what the compiler decided, on GCP and each cluster.

Nothing here decides mesh configuration; it provisions networks, hardened GKE clusters, the shared
PKI and one Istio control plane per cluster, then registers the compiled objects as resources.
"""
