"""The cloud's rules as code: what GCP, GKE, Helm and Istio would refuse (or silently do) at apply time.

Each rule is a small pure function over `Resource` views (mesh.policy.view), registered with its name,
the rule it encodes and where that rule is documented. A resource rule sees one resource; a stack
rule sees all of them (the engine gives dependencies to stack validations only). Values unknown at
preview (`<computed>`) are never reported: the rule cannot know, and `pulumi up` will.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mesh.infra.apis import api_of, service_resource_name
from mesh.policy.view import Resource, Stack, is_unknown, known_str

CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
HOST_PROJECT = "gcp:compute/sharedVPCHostProject:SharedVPCHostProject"
SERVICE_PROJECT = "gcp:compute/sharedVPCServiceProject:SharedVPCServiceProject"
SUBNET_IAM = "gcp:compute/subnetworkIAMMember:SubnetworkIAMMember"
PROJECT_IAM = "gcp:projects/iAMMember:IAMMember"
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
API_SERVICE = "gcp:projects/service:Service"
SUBNETWORK = "gcp:compute/subnetwork:Subnetwork"
FIREWALL = "gcp:compute/firewall:Firewall"
ROUTER_NAT = "gcp:compute/routerNat:RouterNat"
ACCOUNT = "gcp:serviceaccount/account:Account"
BINAUTHZ_POLICY = "gcp:binaryauthorization/policy:Policy"
K8S_SERVICE = "kubernetes:core/v1:Service"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
K8S_PROVIDER = "pulumi:providers:kubernetes"

NETWORK_USER = "roles/compute.networkUser"
HOST_AGENT_USER = "roles/container.hostServiceAgentUser"
SECURITY_ADMIN = "roles/compute.securityAdmin"
# What GKE's service agent does on the host's VPC for ingress and load balancer firewall rules.
FIREWALL_PERMISSIONS = frozenset({
    "compute.firewalls.create", "compute.firewalls.delete", "compute.firewalls.get",
    "compute.firewalls.list", "compute.firewalls.update", "compute.networks.updatePolicy",
})
BINAUTHZ_API = "binaryauthorization.googleapis.com"

_SUBNET_PATH = re.compile(
    r"^(?:https://www\.googleapis\.com/compute/(?:v1|beta)/)?projects/([^/]+)/regions/([^/]+)/subnetworks/([^/]+)$")
_GKE_AGENT = re.compile(r"^serviceAccount:service-(\d+)@container-engine-robot\.iam\.gserviceaccount\.com$")
_APIS_AGENT = re.compile(r"^serviceAccount:(\d+)@cloudservices\.gserviceaccount\.com$")

Finding = tuple[str, str]  # (urn, message); urn "" = the stack as a whole


@dataclass(frozen=True)
class Rule:
    name: str
    description: str  # the rule GCP/GKE/Helm/Istio enforces, and why it matters here
    source: str  # where that rule is documented
    types: tuple[str, ...] = ()  # resource rules: types (or "prefix:" ending in a colon) it looks at
    resource: Callable[[Resource], Iterable[str]] | None = None
    stack: Callable[[Stack], Iterable[Finding]] | None = None

    def applies_to(self, resource_type: str) -> bool:
        return any(resource_type == t or (t.endswith(":") and resource_type.startswith(t)) for t in self.types)

    @property
    def full_description(self) -> str:
        return f"{self.description} Source: {self.source}"


RULES: list[Rule] = []


def resource_rule(name: str, source: str, *types: str, description: str) -> Callable[
        [Callable[[Resource], Iterable[str]]], Callable[[Resource], Iterable[str]]]:
    def register(fn: Callable[[Resource], Iterable[str]]) -> Callable[[Resource], Iterable[str]]:
        RULES.append(Rule(name, " ".join(description.split()), source, types, resource=fn))
        return fn
    return register


def stack_rule(name: str, source: str, *, description: str) -> Callable[
        [Callable[[Stack], Iterable[Finding]]], Callable[[Stack], Iterable[Finding]]]:
    def register(fn: Callable[[Stack], Iterable[Finding]]) -> Callable[[Stack], Iterable[Finding]]:
        RULES.append(Rule(name, " ".join(description.split()), source, stack=fn))
        return fn
    return register


# ----------------------------------------------------------------------------------------- helpers


def gke_agent(number: str) -> str:
    return f"serviceAccount:service-{number}@container-engine-robot.iam.gserviceaccount.com"


def apis_agent(number: str) -> str:
    return f"serviceAccount:{number}@cloudservices.gserviceaccount.com"


def subnet_path(value: Any) -> tuple[str, str, str] | None:
    """(host project, region, name) of a known subnetwork path or self link."""
    text = known_str(value)
    match = _SUBNET_PATH.match(text) if text else None
    return (match.group(1), match.group(2), match.group(3)) if match else None


def _last_segment(value: Any) -> str | None:
    text = known_str(value)
    return text.rsplit("/", 1)[-1] if text else None


def _is_world(cidr: Any) -> bool:
    text = known_str(cidr)
    if text is None:
        return False
    try:
        return ipaddress.ip_network(text.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


def _openness(ranges: Any) -> str | None:
    """Why a source-range list admits everyone, or None (restricted, or unknown at preview)."""
    if is_unknown(ranges):
        return None
    if ranges is None or ranges == []:
        return "no source ranges"
    if not isinstance(ranges, list):
        return None
    world = [r for r in ranges if _is_world(r)]
    return f"source range {world[0]}" if world else None


def _pools_of(stack: Stack, cluster: Resource) -> list[Resource]:
    """The cluster's separately managed node pools: by dependency, else by project/location/name."""
    name, project = known_str(cluster.props.get("name")) or cluster.name, cluster.props.get("project")
    out = []
    for pool in stack.of_type(NODE_POOL):
        same = (_last_segment(pool.props.get("cluster")) == name and pool.props.get("project") == project
                and pool.props.get("location") == cluster.props.get("location"))
        if cluster.urn in pool.dependencies or same:
            out.append(pool)
    return out


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


# ------------------------------------------------------------------------------- 1. Shared VPC


@stack_rule("shared-vpc-service-project", "https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-shared-vpc",
            description="""A GKE cluster in a service project on a host project's subnetwork is created only when
    the host is a Shared VPC host, the service project is attached to it, the cluster project's GKE service
    agent and Google APIs service agent hold roles/compute.networkUser on the subnetwork, the GKE agent holds
    roles/container.hostServiceAgentUser on the host and may manage the host's firewall rules
    (roles/compute.securityAdmin or a custom role with compute.firewalls.* and compute.networks.updatePolicy);
    the cluster must depend on all of it, or it is created first and fails.""")
def shared_vpc_service_project(stack: Stack) -> Iterator[Finding]:
    numbers: dict[str, dict[str, str]] = defaultdict(dict)  # project -> number -> a cluster urn using it
    for cluster in stack.of_type(CLUSTER):
        project = known_str(cluster.props.get("project"))
        subnetwork = cluster.props.get("subnetwork")
        if project is None or subnetwork is None:
            continue
        path = subnet_path(subnetwork)
        if path is None:
            yield cluster.urn, (
                f"{cluster.label}: subnetwork is {subnetwork!r}, not a known path: pass "
                "'projects/<host>/regions/<region>/subnetworks/<name>' so its Shared VPC setup can be checked "
                "before apply")
            continue
        host, region, subnet = path
        if host != project:
            yield from _shared_vpc_cluster(stack, cluster, project, host, region, subnet, numbers)
    for project, used in sorted(numbers.items()):
        if len(used) > 1:
            for number, urn in sorted(used.items()):
                yield urn, (f"project {project}'s service agents are named with different project numbers "
                            f"({', '.join(sorted(used))}); a project has one number: read it once with "
                            f"gcp.organizations.get_project(project_id='{project}') "
                            f"(this cluster's grants use {number})")


def _shared_vpc_cluster(stack: Stack, cluster: Resource, project: str, host: str, region: str, subnet: str,
                        numbers: dict[str, dict[str, str]]) -> Iterator[Finding]:
    deps, urn = set(cluster.dependencies), cluster.urn
    where = f"{cluster.label} (project {project}, subnetwork {subnet} of host {host})"
    # In a sharded fleet the host, the attachment and the host-level grants may belong to another
    # stack (the first cluster by name on the host / of the project there); the program names that
    # cluster in this label, and that stack's preview checks them. The subnet grants are always this
    # stack's, and stay checked.
    elsewhere = isinstance(cluster.props.get("resourceLabels"), dict) and bool(
        cluster.props["resourceLabels"].get(SHARED_VPC_OWNER_LABEL))
    if not elsewhere:
        yield from _host_and_attachment(stack, urn, deps, where, project, host)
    on_subnet = [g for g in stack.where(SUBNET_IAM, project=host, region=region, role=NETWORK_USER)
                 if _last_segment(g.props.get("subnetwork")) == subnet]
    agents = [(g, m.group(1)) for g in on_subnet if (m := _GKE_AGENT.match(str(g.props.get("member"))))]
    chosen = [a for a in agents if a[0].urn in deps] or agents
    found = sorted({number for _, number in chosen})
    if not found:
        malformed = sorted(str(g.props.get("member")) for g in on_subnet if "container-engine-robot" in
                           str(g.props.get("member")))
        hint = f" (found {', '.join(malformed)}: the number must be {project}'s project number)" if malformed else ""
        yield urn, (f"{where}: {project}'s GKE service agent lacks {NETWORK_USER} on the subnetwork: add "
                    f"gcp.compute.SubnetworkIAMMember(project='{host}', region='{region}', subnetwork='{subnet}', "
                    f"role='{NETWORK_USER}', member='serviceAccount:service-<project number>@container-engine-robot"
                    f".iam.gserviceaccount.com') and make the cluster depend on it{hint}")
        return
    if len(found) > 1:
        yield urn, (f"{where}: the GKE service agent grants it depends on name different project numbers "
                    f"({', '.join(found)}); {project} has one")
    number = found[0]
    numbers[project].setdefault(number, urn)
    if not any(g.urn in deps for g, n in chosen if n == number):
        yield urn, (f"{where}: does not depend on {chosen[0][0].label} ({NETWORK_USER} for the GKE service agent): "
                    "add it to the cluster's depends_on")
    required: list[tuple[str, list[Resource], str]] = [
        (f"{NETWORK_USER} on the subnetwork for the Google APIs service agent",
         [g for g in on_subnet if g.props.get("member") == apis_agent(number)],
         f"gcp.compute.SubnetworkIAMMember(project='{host}', region='{region}', subnetwork='{subnet}', "
         f"role='{NETWORK_USER}', member='{apis_agent(number)}')"),
        (f"{HOST_AGENT_USER} on {host} for the GKE service agent",
         stack.where(PROJECT_IAM, project=host, role=HOST_AGENT_USER, member=gke_agent(number)),
         f"gcp.projects.IAMMember(project='{host}', role='{HOST_AGENT_USER}', member='{gke_agent(number)}')"),
        (f"firewall management on {host} for the GKE service agent",
         _firewall_grants(stack, host, gke_agent(number)),
         f"gcp.projects.IAMMember(project='{host}', role='{SECURITY_ADMIN}' (or a gcp.projects.IAMCustomRole in "
         f"{host} with {', '.join(sorted(FIREWALL_PERMISSIONS))}), member='{gke_agent(number)}')"),
    ]
    for what, grants, add in required if not elsewhere else required[:1]:
        if not grants:
            yield urn, f"{where}: lacks {what}: add {add} and make the cluster depend on it"
        elif not any(g.urn in deps for g in grants):
            yield urn, f"{where}: does not depend on {grants[0].label} ({what}): add it to the cluster's depends_on"


def _host_and_attachment(stack: Stack, urn: str, deps: set[str], where: str, project: str,
                         host: str) -> Iterator[Finding]:
    hosts = stack.where(HOST_PROJECT, project=host)
    if not hosts:
        yield urn, f"{where}: {host} is not a Shared VPC host: add gcp.compute.SharedVPCHostProject(project='{host}')"
    attachments = stack.where(SERVICE_PROJECT, hostProject=host, serviceProject=project)
    if not attachments:
        yield urn, (f"{where}: {project} is not attached to {host}: add gcp.compute.SharedVPCServiceProject("
                    f"host_project='{host}', service_project='{project}') and make the cluster depend on it")
        return
    attachment = attachments[0]
    if not any(a.urn in deps for a in attachments):
        yield urn, f"{where}: does not depend on {attachment.label}: add it to the cluster's depends_on"
    if hosts and not any(h.urn in attachment.dependencies for h in hosts):
        yield attachment.urn, (f"{attachment.label} attaches {project} to {host} without depending on "
                               f"{hosts[0].label}: GCP refuses to attach to a project that is not yet a host; "
                               "pass host_project=<host resource>.project or depends_on")


SHARED_VPC_OWNER_LABEL = "fleet-mesh-shared-vpc-owner"
POLICY_OWNER_LABEL = "fleet-mesh-policy-owner"


def _firewall_grants(stack: Stack, host: str, member: str) -> list[Resource]:
    out = []
    for grant in stack.where(PROJECT_IAM, project=host, member=member):
        role = grant.props.get("role")
        if role == SECURITY_ADMIN:
            out.append(grant)
            continue
        roles = [r for r in stack.of_type(CUSTOM_ROLE) if r.props.get("project") == host and (
            role == f"projects/{host}/roles/{r.props.get('roleId')}"
            or (is_unknown(role) and r.urn in grant.dependencies))]
        if any(set(r.props.get("permissions") or []) >= FIREWALL_PERMISSIONS for r in roles):
            out.append(grant)
    return out


# ---------------------------------------------------------------------- 2. one host per service project


@stack_rule("one-host-per-service-project", "https://cloud.google.com/vpc/docs/shared-vpc#shared_vpc_host_and_service_project_associations",
            description="""A service project can be attached to only one Shared VPC host project at a time; a
    second attachment (or a cluster of the project on another host's subnetwork) fails at apply.""")
def one_host_per_service_project(stack: Stack) -> Iterator[Finding]:
    users: dict[str, dict[str, list[Resource]]] = defaultdict(lambda: defaultdict(list))
    for attachment in stack.of_type(SERVICE_PROJECT):
        service = known_str(attachment.props.get("serviceProject"))
        host = known_str(attachment.props.get("hostProject"))
        if service and host:
            users[service][host].append(attachment)
    for cluster in stack.of_type(CLUSTER):
        project, path = known_str(cluster.props.get("project")), subnet_path(cluster.props.get("subnetwork"))
        if project and path and path[0] != project:
            users[project][path[0]].append(cluster)
    for service, hosts in sorted(users.items()):
        if len(hosts) < 2:
            continue
        for host, resources in sorted(hosts.items()):
            others = ", ".join(h for h in sorted(hosts) if h != host)
            for resource in resources:
                yield resource.urn, (
                    f"{resource.label} puts service project {service} on host {host}, but {service} is also on "
                    f"{others}: GCP attaches a service project to one host only; give these clusters a project of "
                    "their own per host, or put their networks in one host project")


# ------------------------------------------------------------------------------ 3. private nodes


@resource_rule("private-nodes", "https://cloud.google.com/kubernetes-engine/docs/concepts/network-isolation",
               CLUSTER, description="""GKE private nodes: privateClusterConfig.enablePrivateNodes must be true (nodes
    without external IPs, egress via Cloud NAT) and the control plane's masterIpv4CidrBlock must be an IPv4 /28,
    the only size GKE accepts.""")
def private_nodes(cluster: Resource) -> Iterator[str]:
    enabled = cluster.get("privateClusterConfig.enablePrivateNodes")
    if enabled is not True and not is_unknown(enabled):
        yield (f"{cluster.label}: privateClusterConfig.enablePrivateNodes is {enabled!r}: set "
               "private_cluster_config.enable_private_nodes=True")
    block = cluster.get("privateClusterConfig.masterIpv4CidrBlock")
    if is_unknown(block):
        return
    try:
        network = ipaddress.ip_network(str(block), strict=True) if block is not None else None
    except ValueError:
        network = None
    if network is None or network.version != 4 or network.prefixlen != 28:
        yield (f"{cluster.label}: privateClusterConfig.masterIpv4CidrBlock is {block!r}: GKE needs an IPv4 /28 "
               "network address (e.g. 172.16.0.0/28) — set ipRanges.controlPlane in the fleet file")


# -------------------------------------------------------------------- 4. withdrawn / deprecated fields

_DOCKER_IMAGES = {"COS", "UBUNTU", "WINDOWS_SAC", "WINDOWS_LTSC"}
# (path, is it set badly?, what GKE did, where it says so)
_WITHDRAWN: list[tuple[str, Callable[[Any], bool], str]] = [
    ("securityPostureConfig.vulnerabilityMode", lambda v: v == "VULNERABILITY_BASIC",
     "basic vulnerability scanning was withdrawn in 2025 (posture-management deprecation): use "
     "VULNERABILITY_DISABLED, or VULNERABILITY_ENTERPRISE if licensed"),
    ("podSecurityPolicyConfig", lambda v: v is not None,
     "PodSecurityPolicy was removed in GKE 1.25 (deprecations/podsecuritypolicy): remove it; use Pod Security "
     "Admission"),
    ("addonsConfig.istioConfig", lambda v: v is not None,
     "the Istio on GKE add-on was removed (migrate to Cloud Service Mesh); this program installs Istio itself: "
     "remove it"),
    ("addonsConfig.kalmConfig", lambda v: v is not None,
     "the Application Manager (KALM) add-on was shut down: remove it"),
    ("enableLegacyAbac", lambda v: v is True,
     "legacy ABAC bypasses RBAC and is disabled by GKE's hardening guide: set enable_legacy_abac=False"),
    ("enableKubernetesAlpha", lambda v: v is True,
     "alpha clusters are unsupported for production, cannot be upgraded and are deleted after 30 days: remove it"),
    ("binaryAuthorization.enabled", lambda v: v is not None,
     "binaryAuthorization.enabled is deprecated: use binary_authorization.evaluation_mode"),
    ("loggingService", lambda v: v == "logging.googleapis.com",
     "Legacy Logging was decommissioned: use logging.googleapis.com/kubernetes (or leave unset)"),
    ("monitoringService", lambda v: v == "monitoring.googleapis.com",
     "Legacy Monitoring was decommissioned: use monitoring.googleapis.com/kubernetes (or leave unset)"),
]


@resource_rule("no-withdrawn-gke-fields", "https://cloud.google.com/kubernetes-engine/docs/deprecations",
               CLUSTER, NODE_POOL, description="""GKE rejects or ignores settings it has withdrawn:
    VULNERABILITY_BASIC posture scanning (deprecations/posture-management-deprecation), PodSecurityPolicy
    (removed in 1.25), the Istio and KALM add-ons, Docker-based node images COS/UBUNTU (removed in 1.24,
    deprecations/docker-containerd), legacy ABAC, alpha clusters in production, Legacy Logging/Monitoring and
    binaryAuthorization.enabled.""")
def no_withdrawn_gke_fields(resource: Resource) -> Iterator[str]:
    if resource.type == CLUSTER:
        for path, bad, why in _WITHDRAWN:
            value = resource.get(path)
            if not is_unknown(value) and bad(value):
                yield f"{resource.label}: {path} = {value!r}: {why}"
        configs = [("nodeConfig", resource.get("nodeConfig"))] + [
            (f"nodePools[{i}].nodeConfig", (p or {}).get("nodeConfig"))
            for i, p in enumerate(resource.get("nodePools") or []) if isinstance(p, dict)]
    else:
        configs = [("nodeConfig", resource.get("nodeConfig"))]
    for where, config in configs:
        image = known_str((config or {}).get("imageType")) if isinstance(config, dict) else None
        if image and image.upper() in _DOCKER_IMAGES:
            yield (f"{resource.label}: {where}.imageType = {image!r} is a Docker-based node image, unsupported since "
                   f"GKE 1.24: use {image.upper()}_CONTAINERD")


# ------------------------------------------------------------------------------- 5. APIs enabled


# Types that take no project: it is the project of the resource they name (a key's ring, a grant's key).
PROJECT_FROM_PARENT = ("gcp:kms/cryptoKey:CryptoKey", "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")


def _parent_project(stack: Stack, resource: Resource, depth: int = 3) -> Any:
    """The project of the KMS resource this one depends on (its ring or key), a few hops up."""
    for dependency in stack.dependencies_of(resource):
        if dependency.type.startswith("gcp:kms/"):
            if dependency.props.get("project") is not None:
                return dependency.props["project"]
            if depth > 1:
                found = _parent_project(stack, dependency, depth - 1)
                if found is not None:
                    return found
    return None


@stack_rule("apis-enabled", "https://cloud.google.com/service-usage/docs/enable-disable",
            description="""A Google API must be enabled in a project before anything is created in it ("API has
    not been used in project … or it is disabled"). Every resource whose type needs an API (mesh/infra/apis.py)
    names its project explicitly and depends on a gcp:projects/service:Service enabling that API there, with
    disableOnDestroy false (destroying one stack must not switch an API off under everything else).""")
def apis_enabled(stack: Stack) -> Iterator[Finding]:
    for resource in stack:
        api = api_of(resource.type)
        if api is None:
            continue
        # Attaching needs the Compute Engine API in the service project (the host has it: it is a host).
        project_value = resource.props.get("serviceProject" if resource.type == SERVICE_PROJECT else "project")
        if project_value is None and resource.type in PROJECT_FROM_PARENT:
            project_value = _parent_project(stack, resource)
        if project_value is None:
            yield resource.urn, (f"{resource.label} names no project: it would land in the provider's default "
                                 "project (gcp:project); set project= explicitly")
            continue
        project = known_str(project_value)
        if project is None:
            continue
        services = stack.where(API_SERVICE, project=project, service=api)
        if not services:
            yield resource.urn, (
                f"{resource.label} needs {api} in {project}, and nothing enables it: add gcp.projects.Service("
                f"'{service_resource_name(project, api)}', project='{project}', service='{api}', "
                "disable_on_destroy=False) and make this resource depend on it")
        elif not any(s.urn in resource.dependencies for s in services):
            yield resource.urn, (f"{resource.label} does not depend on {services[0].label} ({api} in {project}): "
                                 "it may be created before the API is on; add it to depends_on")
    for service in stack.of_type(API_SERVICE):
        if service.props.get("disableOnDestroy") is not False and not is_unknown(service.props.get("disableOnDestroy")):
            yield service.urn, (f"{service.label} ({service.props.get('service')} in {service.props.get('project')}): "
                                "set disable_on_destroy=False — destroying this stack must not disable the API "
                                "for everything else in the project")


# ------------------------------------------------------------------------- 6. nothing open to the world


@resource_rule("firewall-not-open-to-world", "https://cloud.google.com/firewall/docs/firewalls#sources_for_ingress_rules",
               FIREWALL, description="""An INGRESS allow rule with 0.0.0.0/0 or ::/0 in sourceRanges admits the whole
    internet; one with no sourceRanges, sourceTags or sourceServiceAccounts gets 0.0.0.0/0 from GCP by
    default.""")
def firewall_not_open_to_world(rule: Resource) -> Iterator[str]:
    direction = rule.props.get("direction") or "INGRESS"
    if direction != "INGRESS" or rule.props.get("disabled") is True or not rule.props.get("allows"):
        return
    ranges = rule.props.get("sourceRanges")
    if ranges is None and (rule.props.get("sourceTags") or rule.props.get("sourceServiceAccounts")):
        return
    why = _openness(ranges)
    if why == "no source ranges":
        yield (f"{rule.label}: INGRESS rule with no sourceRanges, sourceTags or sourceServiceAccounts: GCP applies "
               "it to 0.0.0.0/0; list the exact source ranges")
    elif why:
        yield f"{rule.label}: INGRESS rule allows {why} (the whole internet): list the exact source ranges"


@resource_rule("load-balancer-source-ranges",
               "https://cloud.google.com/kubernetes-engine/docs/concepts/service-load-balancer-parameters",
               K8S_SERVICE, HELM_RELEASE, description="""A Kubernetes Service of type LoadBalancer (and the Istio
    `gateway` chart, whose service type defaults to LoadBalancer) is reachable from every address unless
    spec.loadBalancerSourceRanges restricts it; GKE turns the ranges into firewall rules. The chart drops an empty
    list (`with .Values.service.loadBalancerSourceRanges`), so an empty list is open too.""")
def load_balancer_source_ranges(resource: Resource) -> Iterator[str]:
    if resource.type == K8S_SERVICE:
        spec = resource.props.get("spec")
        if not isinstance(spec, dict) or spec.get("type") != "LoadBalancer":
            return
        ranges: Any = spec.get("loadBalancerSourceRanges")
        annotations = resource.get("metadata.annotations") or {}
        if ranges is None and isinstance(annotations, dict):
            annotation = annotations.get("service.beta.kubernetes.io/load-balancer-source-ranges")
            text = known_str(annotation)
            ranges = text.split(",") if text else annotation
        internal = isinstance(annotations, dict) and str(
            annotations.get("networking.gke.io/load-balancer-type", "")).lower() == "internal"
        why = _openness(ranges)
        if why:
            audience = "every address that routes to the VPC" if internal else "the whole internet"
            yield (f"{resource.label}: LoadBalancer Service with {why} is open to {audience}: set "
                   "spec.loadBalancerSourceRanges to the callers' ranges")
        return
    chart = known_str(resource.props.get("chart"))
    if not chart or not chart.rstrip("/").rsplit("/", 1)[-1].endswith("gateway"):
        return
    values = resource.props.get("values")
    if not isinstance(values, dict):
        return
    service = values.get("service") or {}
    if not isinstance(service, dict):
        return
    kind = service.get("type", "LoadBalancer")  # the chart's default
    if kind != "LoadBalancer":
        return
    why = _openness(service.get("loadBalancerSourceRanges"))
    if why:
        yield (f"{resource.label}: gateway chart with service type LoadBalancer and {why} is open to everyone: set "
               "values.service.loadBalancerSourceRanges to the callers' ranges (the chart drops an empty list)")


# ---------------------------------------------------------------- 7. no Kubernetes default provider


@resource_rule("kubernetes-explicit-provider", "https://www.pulumi.com/docs/iac/concepts/resources/providers/#disabling-default-providers",
               "kubernetes:", description="""Every Kubernetes resource names its cluster's explicit
    pulumi:providers:kubernetes; on a default provider it would be applied to whatever cluster the ambient
    kubeconfig points at.""")
def kubernetes_explicit_provider(resource: Resource) -> Iterator[str]:
    if not resource.custom:
        return
    if not resource.provider:
        yield (f"{resource.label} uses the default Kubernetes provider (the ambient kubeconfig): pass "
               "opts=ResourceOptions(provider=<the cluster's kubernetes.Provider>) or providers= on its component")
        return
    parts = resource.provider.split("::")
    kind = parts[2].rsplit("$", 1)[-1] if len(parts) > 3 else ""
    name = parts[3] if len(parts) > 3 else ""
    if kind != K8S_PROVIDER or name.startswith("default"):
        yield (f"{resource.label} uses provider {resource.provider}, not an explicit {K8S_PROVIDER}: pass the "
               "cluster's kubernetes.Provider")


# -------------------------------------------------------------------------------- 8. protected


DECOMMISSION_LABEL = "fleet-mesh-decommission"


@resource_rule("gke-cluster-protected", "https://cloud.google.com/kubernetes-engine/docs/how-to/deleting-a-cluster",
               CLUSTER, description="""Deleting or replacing a GKE cluster destroys every workload on it. Pulumi
    `protect` blocks delete and replace at preview; GKE's deletionProtection blocks deletion at the API. Both
    must be on, except on a cluster being decommissioned (label fleet-mesh-decommission, set by
    mesh:decommission, which the program allows only for a cluster that runs no service).""")
def gke_cluster_protected(cluster: Resource) -> Iterator[str]:
    if (cluster.props.get("resourceLabels") or {}).get(DECOMMISSION_LABEL) == "true":
        return
    if not cluster.protect:
        yield f"{cluster.label} is not protected: pass opts=ResourceOptions(protect=True)"
    if cluster.props.get("deletionProtection") is not True:
        yield (f"{cluster.label}: deletionProtection is {cluster.props.get('deletionProtection')!r}: set "
               "deletion_protection=True")


@resource_rule("ca-keys-protected", "https://www.pulumi.com/docs/iac/concepts/resources/options/protect/",
               PRIVATE_KEY, description="""The mesh's root and intermediate CA keys cannot be recreated: a new key
    means a new CA, and every workload certificate of the fleet stops verifying. Every tls PrivateKey is
    protected.""")
def ca_keys_protected(key: Resource) -> Iterator[str]:
    if not key.protect:
        yield f"{key.label} is not protected: replacing it rotates a CA; pass opts=ResourceOptions(protect=True)"


# ------------------------------------------------------------------------------- 9. more GKE rules


@resource_rule("workload-pool-of-own-project", "https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity",
               CLUSTER, description="""GKE accepts only the cluster project's own workload pool,
    PROJECT_ID.svc.id.goog.""")
def workload_pool_of_own_project(cluster: Resource) -> Iterator[str]:
    pool = known_str(cluster.get("workloadIdentityConfig.workloadPool"))
    project = known_str(cluster.props.get("project"))
    if pool and project and pool != f"{project}.svc.id.goog":
        yield f"{cluster.label}: workloadPool {pool!r} is not its project's: set '{project}.svc.id.goog'"


@stack_rule("workload-identity-metadata", "https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity",
            description="""On a Workload Identity cluster a node pool must run the GKE metadata server
    (workloadMetadataConfig.mode GKE_METADATA); with GCE_METADATA its pods read the node service account's
    credentials.""")
def workload_identity_metadata(stack: Stack) -> Iterator[Finding]:
    for cluster in stack.of_type(CLUSTER):
        if not known_str(cluster.get("workloadIdentityConfig.workloadPool")):
            continue
        for pool in _pools_of(stack, cluster):
            mode = pool.get("nodeConfig.workloadMetadataConfig.mode")
            if mode != "GKE_METADATA" and not is_unknown(mode):
                yield pool.urn, (f"{pool.label} of Workload Identity cluster '{cluster.name}': "
                                 f"workloadMetadataConfig.mode is {mode!r}: set "
                                 "node_config.workload_metadata_config={'mode': 'GKE_METADATA'}")


@stack_rule("release-channel-auto-upgrade", "https://cloud.google.com/kubernetes-engine/docs/concepts/release-channels",
            description="""Node pools of a cluster enrolled in a release channel always auto-upgrade; GKE rejects
    management.autoUpgrade false on them.""")
def release_channel_auto_upgrade(stack: Stack) -> Iterator[Finding]:
    for cluster in stack.of_type(CLUSTER):
        channel = known_str(cluster.get("releaseChannel.channel"))
        if not channel or channel == "UNSPECIFIED":
            continue
        for pool in _pools_of(stack, cluster):
            if pool.get("management.autoUpgrade") is False:
                yield pool.urn, (f"{pool.label}: management.autoUpgrade is false on '{cluster.name}' "
                                 f"(release channel {channel}): set auto_upgrade=True")


@resource_rule("spot-pool-tainted", "https://cloud.google.com/kubernetes-engine/docs/concepts/spot-vms",
               NODE_POOL, description="""Spot (and preemptible) nodes are reclaimed at any time; GKE's guidance is a
    NoSchedule taint so only workloads that tolerate it (never istiod or the east-west gateway) land there.""")
def spot_pool_tainted(pool: Resource) -> Iterator[str]:
    if pool.get("nodeConfig.spot") is not True and pool.get("nodeConfig.preemptible") is not True:
        return
    taints = pool.get("nodeConfig.taints")
    if is_unknown(taints):
        return
    if not any(isinstance(t, dict) and t.get("effect") == "NO_SCHEDULE" for t in taints or []):
        yield (f"{pool.label} is a Spot pool without a NoSchedule taint: add node_config.taints=[{{'key': "
               "'cloud.google.com/gke-spot', 'value': 'true', 'effect': 'NO_SCHEDULE'}]")


@stack_rule("binary-authorization-policy", "https://cloud.google.com/binary-authorization/docs/setting-up",
            description="""binaryAuthorization.evaluationMode PROJECT_SINGLETON_POLICY_ENFORCE evaluates the
    project's Binary Authorization policy: the Binary Authorization API must be enabled in the cluster project
    before the cluster, and without a declared gcp:binaryauthorization/policy:Policy the project's default policy
    (allow every image) is what gets enforced.""")
def binary_authorization_policy(stack: Stack) -> Iterator[Finding]:
    for cluster in stack.of_type(CLUSTER):
        project = known_str(cluster.props.get("project"))
        if cluster.get("binaryAuthorization.evaluationMode") != "PROJECT_SINGLETON_POLICY_ENFORCE" or not project:
            continue
        # A project's singleton policy belongs to the stack of its first cluster; the label names it.
        declared_elsewhere = bool((cluster.props.get("resourceLabels") or {}).get(POLICY_OWNER_LABEL))
        if not declared_elsewhere and not stack.where(BINAUTHZ_POLICY, project=project):
            yield cluster.urn, (f"{cluster.label} enforces {project}'s Binary Authorization policy, but the stack "
                                f"declares none: add gcp.binaryauthorization.Policy(project='{project}', ...)")
        services = stack.where(API_SERVICE, project=project, service=BINAUTHZ_API)
        if not services:
            yield cluster.urn, (f"{cluster.label} needs {BINAUTHZ_API} in {project}: add gcp.projects.Service("
                                f"'{service_resource_name(project, BINAUTHZ_API)}', project='{project}', "
                                f"service='{BINAUTHZ_API}', disable_on_destroy=False) and depend on it")
        elif not any(s.urn in cluster.dependencies for s in services):
            yield cluster.urn, (f"{cluster.label} does not depend on {services[0].label}: GKE refuses a cluster "
                                f"enforcing Binary Authorization while {BINAUTHZ_API} is off; add it to depends_on")


@resource_rule("nat-dynamic-ports", "https://cloud.google.com/nat/docs/ports-and-addresses#dynamic-port",
               ROUTER_NAT, description="""GKE nodes run many pods behind one NAT port budget: Cloud NAT must use
    dynamic port allocation. The API then requires minPortsPerVm a power of two from 32 to 32768, maxPortsPerVm a
    power of two above it (at most 65536), and no endpoint-independent mapping.""")
def nat_dynamic_ports(nat: Resource) -> Iterator[str]:
    dynamic = nat.props.get("enableDynamicPortAllocation")
    if is_unknown(dynamic):
        return
    if dynamic is not True:
        yield (f"{nat.label}: dynamic port allocation is off (64 ports per node, shared by all its pods): set "
               "enable_dynamic_port_allocation=True")
        return
    if nat.props.get("enableEndpointIndependentMapping") is True:
        yield f"{nat.label}: endpoint-independent mapping cannot be combined with dynamic port allocation: set it False"
    low, high = nat.props.get("minPortsPerVm"), nat.props.get("maxPortsPerVm")
    for key, value, floor, ceiling in (("minPortsPerVm", low, 32, 32768), ("maxPortsPerVm", high, 64, 65536)):
        if isinstance(value, int) and not (floor <= value <= ceiling and _power_of_two(value)):
            yield f"{nat.label}: {key} = {value}: must be a power of two from {floor} to {ceiling}"
    if isinstance(low, int) and isinstance(high, int) and low >= high:
        yield f"{nat.label}: minPortsPerVm {low} must be below maxPortsPerVm {high}"


@resource_rule("dns-endpoint", "https://cloud.google.com/kubernetes-engine/docs/concepts/network-isolation#dns-based_endpoint",
               CLUSTER, description="""The control plane's DNS-based endpoint
    (controlPlaneEndpointsConfig.dnsEndpointConfig.allowExternalTraffic) lets CI reach a private control plane
    with IAM-checked requests instead of an IP allowlist; it is on for every cluster.""")
def dns_endpoint(cluster: Resource) -> Iterator[str]:
    allowed = cluster.get("controlPlaneEndpointsConfig.dnsEndpointConfig.allowExternalTraffic")
    if allowed is not True and not is_unknown(allowed):
        yield (f"{cluster.label}: the DNS endpoint is off: set control_plane_endpoints_config={{'dns_endpoint_config': "
               "{'allow_external_traffic': True}}")


@resource_rule("dataplane-v2-without-calico", "https://cloud.google.com/kubernetes-engine/docs/concepts/dataplane-v2",
               CLUSTER, description="""GKE Dataplane V2 (ADVANCED_DATAPATH) enforces network policy itself; GKE
    rejects Calico network policy (networkPolicy.enabled, the networkPolicyConfig add-on) on such clusters.""")
def dataplane_v2_without_calico(cluster: Resource) -> Iterator[str]:
    if cluster.props.get("datapathProvider") != "ADVANCED_DATAPATH":
        return
    calico_addon = cluster.get("addonsConfig.networkPolicyConfig.disabled") is False
    if cluster.get("networkPolicy.enabled") is True or calico_addon:
        yield f"{cluster.label}: Calico network policy is enabled on a Dataplane V2 cluster: remove network_policy"


@stack_rule("secondary-ranges-exist", "https://cloud.google.com/kubernetes-engine/docs/how-to/alias-ips",
            description="""A VPC-native cluster names its pod and service secondary ranges; GKE fails the create
    when the subnetwork has no secondary range of that name.""")
def secondary_ranges_exist(stack: Stack) -> Iterator[Finding]:
    for cluster in stack.of_type(CLUSTER):
        path = subnet_path(cluster.props.get("subnetwork"))
        subnets = ([s for s in stack.where(SUBNETWORK, project=path[0], region=path[1])
                    if known_str(s.props.get("name")) == path[2]] if path else [])
        subnets = subnets or [d for d in stack.dependencies_of(cluster) if d.type == SUBNETWORK]
        if len(subnets) != 1:
            continue  # not managed by this stack: GKE checks it
        subnet = subnets[0]
        ranges = subnet.props.get("secondaryIpRanges")
        if is_unknown(ranges) or not isinstance(ranges, list):
            continue
        names = {r.get("rangeName") for r in ranges if isinstance(r, dict)}
        for key in ("clusterSecondaryRangeName", "servicesSecondaryRangeName"):
            wanted = known_str(cluster.get(f"ipAllocationPolicy.{key}"))
            if wanted and wanted not in names:
                yield cluster.urn, (f"{cluster.label}: ipAllocationPolicy.{key} {wanted!r} is not a secondary range "
                                    f"of {subnet.label} (has {', '.join(sorted(str(n) for n in names)) or 'none'})")


_ACCOUNT_ID = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
_CLUSTER_NAME = re.compile(r"^[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?$")


@resource_rule("service-account-id", "https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/create",
               ACCOUNT, description="""IAM accepts a service account ID of 6 to 30 characters: a lowercase letter,
    then lowercase letters, digits or hyphens, not ending in a hyphen (a truncated name can end in one).""")
def service_account_id(account: Resource) -> Iterator[str]:
    account_id = known_str(account.props.get("accountId"))
    if account_id is not None and not _ACCOUNT_ID.match(account_id):
        yield (f"{account.label}: accountId {account_id!r} must be 6-30 characters of [a-z0-9-], start with a letter "
               "and not end with a hyphen")


@resource_rule("gke-cluster-name", "https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/projects.locations.clusters#Cluster",
               CLUSTER, description="""GKE cluster names are at most 40 characters: lowercase letters, digits and
    hyphens, starting with a letter and ending with a letter or digit.""")
def gke_cluster_name(cluster: Resource) -> Iterator[str]:
    name = known_str(cluster.props.get("name"))
    if name is not None and not _CLUSTER_NAME.match(name):
        yield f"{cluster.label}: name {name!r} is not a valid GKE cluster name (≤ 40 of [a-z0-9-], letter first)"


@resource_rule("node-pool-autoscaling-bounds", "https://cloud.google.com/kubernetes-engine/docs/concepts/cluster-autoscaler",
               NODE_POOL, description="""GKE rejects an autoscaled node pool whose minimum exceeds its maximum (per
    zone and total) or whose maximum is zero.""")
def node_pool_autoscaling_bounds(pool: Resource) -> Iterator[str]:
    scaling = pool.get("autoscaling")
    if not isinstance(scaling, dict):
        return
    for low_key, high_key in (("minNodeCount", "maxNodeCount"), ("totalMinNodeCount", "totalMaxNodeCount")):
        low, high = scaling.get(low_key), scaling.get(high_key)
        if isinstance(high, int) and high < 1:
            yield f"{pool.label}: autoscaling.{high_key} is {high}: must be at least 1"
        if isinstance(low, int) and isinstance(high, int) and low > high:
            yield f"{pool.label}: autoscaling.{low_key} {low} exceeds {high_key} {high}"


def by_name() -> dict[str, Rule]:
    return {rule.name: rule for rule in RULES}
