"""Which Google API each resource type needs, and which APIs each kind of project gets enabled.

A resource created before its API is enabled fails at apply time ("API has not been used in project
… or it is disabled"); the mock engine never says so. The program enables these APIs per project
(`gcp.projects.Service`, never disabled on destroy) and makes every resource depend on its API; the
policy pack checks both from this one table, and a test checks that every GCP type the program
registers is listed here.
"""

from __future__ import annotations

# Resource type -> the API that serves it. Prefix entries (ending in "/") cover a whole module.
API_OF_TYPE: dict[str, str] = {
    "gcp:compute/": "compute.googleapis.com",
    "gcp:container/": "container.googleapis.com",
    "gcp:serviceaccount/": "iam.googleapis.com",
    "gcp:projects/iAMCustomRole:IAMCustomRole": "iam.googleapis.com",
    "gcp:projects/iAMMember:IAMMember": "cloudresourcemanager.googleapis.com",
    "gcp:binaryauthorization/": "binaryauthorization.googleapis.com",
    "gcp:dns/": "dns.googleapis.com",
    "gcp:kms/": "cloudkms.googleapis.com",
}

# Enabled in every project that holds clusters. Binary Authorization is evaluated by GKE at pod
# admission, logging and monitoring receive what GKE's agents send by default.
CLUSTER_PROJECT_APIS = (
    "binaryauthorization.googleapis.com",
    "cloudkms.googleapis.com",  # the clusters' secrets-encryption keys
    "cloudresourcemanager.googleapis.com",
    "compute.googleapis.com",
    "container.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
)
# Enabled in every project that holds a VPC. GKE's Shared VPC guide enables the Kubernetes Engine
# API in the host project too; IAM serves the custom firewall role GKE's agents get there.
NETWORK_PROJECT_APIS = (
    "cloudresourcemanager.googleapis.com",
    "compute.googleapis.com",
    "container.googleapis.com",
    "dns.googleapis.com",  # the private googleapis.com zone of Private Google Access
    "iam.googleapis.com",
)


def api_of(resource_type: str) -> str | None:
    """The API a resource type needs, or None (Pulumi-internal, TLS, Kubernetes, the API itself)."""
    if resource_type in API_OF_TYPE:
        return API_OF_TYPE[resource_type]
    module = resource_type.split(":")[0] + ":" + resource_type.split(":")[1].split("/")[0] + "/"
    return API_OF_TYPE.get(module)


def service_resource_name(project: str, api: str) -> str:
    """Pulumi name of the `gcp.projects.Service` enabling `api` in `project`."""
    return f"{project}-{api.split('.')[0]}"
